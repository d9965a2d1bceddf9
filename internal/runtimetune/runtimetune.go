// Package runtimetune gives a service binary the Go runtime settings its
// benchmarks justify when its environment chooses none: a GC target of
// DefaultGOGC, and a soft memory limit (GOMEMLIMIT) at MemoryLimitRatio of
// the container's memory limit, read from its cgroup by automemlimit. A
// GOGC or GOMEMLIMIT in the environment wins (and AUTOMEMLIMIT=off turns
// the memory limit off), so a deployment can still choose.
package runtimetune

import (
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// DefaultGOGC is the GC target when GOGC is not set. A replica's live heap
// is a few MiB, so at the runtime's default of 100 it collects many times a
// second under load; 400 cut server CPU per call by 22-27 % and raised
// throughput 15-24 % for about 10 MiB more peak memory (bench/RESULTS.md,
// "Proposed changes", item 1). The memory limit bounds the heap whatever
// the target.
const DefaultGOGC = 400

// MemoryLimitRatio is GOMEMLIMIT's share of the container's memory limit:
// GOMEMLIMIT bounds only the memory the runtime manages, while the
// container's limit also charges the binary's text, thread stacks outside
// the heap and kernel buffers, so it keeps a fifth for those.
const MemoryLimitRatio = 0.8

// Settings are the GC settings a process runs with, and where each came
// from.
type Settings struct {
	// GOGC is the GC target in percent; -1 is off.
	GOGC int
	// GOGCFrom is "env" (GOGC was set) or "default" (DefaultGOGC).
	GOGCFrom string
	// MemoryLimit is the soft memory limit in bytes; math.MaxInt64 is none.
	MemoryLimit int64
	// MemoryLimitFrom is "env" (GOMEMLIMIT was set), "cgroup" (the
	// container's limit times MemoryLimitRatio) or "none" (no limit found,
	// or AUTOMEMLIMIT=off).
	MemoryLimitFrom string
}

// Apply sets the GC target and the memory limit the environment leaves
// unset and logs the settings the process then runs with, once, at info.
// Mains call it first thing after making their logger.
func Apply(log *slog.Logger) Settings {
	return apply(log, memlimit.FromCgroup)
}

// apply is Apply with the container's memory limit read by limit.
func apply(log *slog.Logger, limit memlimit.Provider) Settings {
	var s Settings
	if os.Getenv("GOGC") != "" {
		s.GOGCFrom = "env"
	} else {
		debug.SetGCPercent(DefaultGOGC)
		s.GOGCFrom = "default"
	}
	s.GOGC = currentGOGC()

	attrs := []any{}
	if os.Getenv("GOMEMLIMIT") != "" {
		s.MemoryLimitFrom = "env"
		s.MemoryLimit = debug.SetMemoryLimit(-1)
	} else {
		// Set leaves the limit alone (and returns it) on AUTOMEMLIMIT=off,
		// and sets none when the cgroup has no limit.
		n, err := memlimit.Set(memlimit.WithProvider(limit), memlimit.WithRatio(MemoryLimitRatio))
		s.MemoryLimit, s.MemoryLimitFrom = n, "cgroup"
		if err != nil {
			// Not in a cgroup with a readable limit (another OS, an odd
			// mount): run without one, as the runtime would.
			attrs = append(attrs, "gomemlimit_error", err.Error())
		}
		if err != nil || n == math.MaxInt64 {
			s.MemoryLimitFrom = "none"
		}
	}

	gomemlimit := any("none")
	if s.MemoryLimit != math.MaxInt64 {
		gomemlimit = s.MemoryLimit
	}
	attrs = append(attrs,
		"gogc", s.GOGC, "gogc_from", s.GOGCFrom,
		"gomemlimit", gomemlimit, "gomemlimit_from", s.MemoryLimitFrom,
		"gomaxprocs", runtime.GOMAXPROCS(0))
	log.Info("runtime settings", attrs...)
	return s
}

// currentGOGC returns the runtime's GC target, -1 when off.
func currentGOGC() int {
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(sample)
	v := sample[0].Value.Uint64()
	if v > math.MaxInt32 {
		return -1
	}
	return int(v)
}
