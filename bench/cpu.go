package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuSample is a reading of the CPU time used so far by the processes a
// scenario charges, by this process (the load generator), by PostgreSQL's
// processes, and by the whole machine.
type cpuSample struct {
	at      time.Time
	procs   time.Duration
	self    time.Duration
	pg      map[int]time.Duration
	busy    time.Duration // machine-wide, all CPUs
	total   time.Duration // machine-wide, all CPUs, busy or idle
	readErr bool          // some reading failed; the figures are partial
}

// cpuUsage is the CPU used between two samples.
type cpuUsage struct {
	wall                         time.Duration
	procs, self, pg, busy, total time.Duration
	partial                      bool
}

func takeCPU(pids []int) cpuSample {
	s := cpuSample{at: time.Now(), pg: map[int]time.Duration{}}
	for _, pid := range pids {
		d, err := procCPU(pid)
		s.procs += d
		s.readErr = s.readErr || err != nil
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	} else {
		s.readErr = true
	}
	s.pg = postgresCPU()
	var err error
	if s.busy, s.total, err = machineCPU(); err != nil {
		s.readErr = true
	}
	return s
}

func (s cpuSample) until(end cpuSample) cpuUsage {
	u := cpuUsage{
		wall:    end.at.Sub(s.at),
		procs:   end.procs - s.procs,
		self:    end.self - s.self,
		busy:    end.busy - s.busy,
		total:   end.total - s.total,
		partial: s.readErr || end.readErr,
	}
	// Backends that connected in between count from zero; ones that exited
	// are lost (the pools keep theirs open, so these are rare).
	for pid, d := range end.pg {
		u.pg += d - s.pg[pid]
	}
	return u
}

// procCPU returns the user+system CPU time of process pid, all threads.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name, which may contain
	// spaces: state is field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, os.ErrInvalid
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, os.ErrInvalid
	}
	return time.Duration(ut+st) * clockTick, nil
}

// postgresCPU returns the CPU time of every process named "postgres" on
// the machine, by pid. The server is shared: other users' queries count
// too, which the machine-wide "other" figure helps to judge.
func postgresCPU() map[int]time.Duration {
	out := map[int]time.Duration{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if d, err := procCPU(pid); err == nil {
			out[pid] = d
		}
	}
	return out
}

// machineCPU returns the busy and total CPU time of all CPUs from
// /proc/stat (busy is everything but idle and iowait).
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, os.ErrInvalid
	}
	var sum, idle int64
	for i, s := range f[1:] {
		if i >= 8 { // guest times are already in user and nice
			break
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, os.ErrInvalid
		}
		sum += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick, nil
}

// peakRSS returns the peak resident set size (VmHWM) of process pid.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, os.ErrInvalid
}
