package abuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processReading is one service process's memory, and the Prometheus
// text it served for the reading.
type processReading struct {
	mem       memory
	heapInuse int64 // go_memstats_heap_inuse_bytes right after a forced GC
	metrics   string
}

// metric returns a metric of the reading's scrape, 0 if it has none.
func (p processReading) metric(name string, labels ...string) float64 {
	v, _ := metricValue(p.metrics, name, labels...)
	return v
}

// heapUnreleased is the heap memory that is free but still resident: the
// Go runtime returns it to the OS gradually, so it counts in RSS a while.
func (p processReading) heapUnreleased() int64 {
	return int64(p.metric("go_memstats_heap_idle_bytes") - p.metric("go_memstats_heap_released_bytes"))
}

// goHeld is the memory the Go runtime holds from the OS and has not
// released: heap, stacks and the runtime's own structures, some of it
// reserved but never touched (so not resident). Its growth beside RSS's
// tells the Go runtime's share from memory outside it (SQLite's, through
// modernc.org/libc) and from the binary's pages.
func (p processReading) goHeld() int64 {
	return int64(p.metric("go_memstats_sys_bytes") - p.metric("go_memstats_heap_released_bytes"))
}

// readings are the "before" or "after" figures of the run.
type readings struct {
	auth     processReading
	replicas []processReading
	store    storeReading
}

// read takes a reading of every process and of authsvc's store.
func (s *system) read(ctx context.Context, attackerID string) (readings, error) {
	var r readings
	var err error
	if r.auth, err = readProcess(ctx, s.auth); err != nil {
		return readings{}, err
	}
	for _, svc := range s.replicas {
		p, err := readProcess(ctx, svc)
		if err != nil {
			return readings{}, err
		}
		r.replicas = append(r.replicas, p)
	}
	if r.store, err = readStore(ctx, s.authDB, attackerID); err != nil {
		return readings{}, err
	}
	return r, nil
}

// cpuSeconds returns the CPU seconds used so far by authsvc, by each
// replica (their process_cpu_seconds_total), by this process (the shopper)
// and by its finished children (the attacker's processes), in that order.
func (s *system) cpuSeconds(ctx context.Context) ([]float64, error) {
	var out []float64
	for _, svc := range slices.Concat([]*service{s.auth}, s.replicas) {
		text, err := httpGet(ctx, "http://"+svc.admin+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("%s: metrics: %w", svc.name, err)
		}
		v, ok := metricValue(text, "process_cpu_seconds_total")
		if !ok {
			return nil, fmt.Errorf("%s: no process_cpu_seconds_total in /metrics", svc.name)
		}
		out = append(out, v)
	}
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			return nil, fmt.Errorf("getrusage: %w", err)
		}
		out = append(out, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
	}
	return out, nil
}

// readProcess forces garbage collections in svc (pprof's heap profile
// with gc=1), then scrapes its metrics and reads its resident memory. Two
// collections: what sync.Pools hold survives the first one.
func readProcess(ctx context.Context, svc *service) (processReading, error) {
	for range 2 {
		if _, err := httpGet(ctx, "http://"+svc.admin+"/debug/pprof/heap?gc=1"); err != nil {
			return processReading{}, fmt.Errorf("%s: force a GC: %w", svc.name, err)
		}
	}
	text, err := httpGet(ctx, "http://"+svc.admin+"/metrics")
	if err != nil {
		return processReading{}, fmt.Errorf("%s: metrics: %w", svc.name, err)
	}
	p := processReading{metrics: text}
	heap, ok := metricValue(text, "go_memstats_heap_inuse_bytes")
	if !ok {
		return processReading{}, fmt.Errorf("%s: no go_memstats_heap_inuse_bytes in /metrics", svc.name)
	}
	p.heapInuse = int64(heap)
	if p.mem, err = residentMemory(svc.proc.Pid()); err != nil {
		return processReading{}, fmt.Errorf("%s: %w", svc.name, err)
	}
	return p, nil
}

// memory is a process's resident memory from /proc/<pid>/status: VmRSS
// and its parts, anonymous (the heap, stacks, SQLite's caches) and file
// backed (the binary's pages, mapped files).
type memory struct {
	rss, anon, file int64
}

// residentMemory reads the resident memory of process pid.
func residentMemory(pid int) (memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, fmt.Errorf("read RSS: %w", err)
	}
	var m memory
	fields := map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file}
	for line := range strings.Lines(string(b)) {
		name, v, _ := strings.Cut(line, "\t")
		dst := fields[name]
		if dst == nil {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || unit != "kB" {
			return memory{}, fmt.Errorf("read RSS: unexpected line %q", strings.TrimSpace(line))
		}
		*dst = kb << 10
		delete(fields, name)
	}
	if len(fields) > 0 {
		return memory{}, errors.New("read RSS: VmRSS, RssAnon or RssFile missing from /proc/<pid>/status")
	}
	return m, nil
}

// httpGet returns the body of a GET of url, which must answer 200. It
// asks for no compression: a gzip writer that served the request would
// otherwise stay in the service's heap, pooled, and count as its growth.
func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
