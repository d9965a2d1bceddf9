package bench

import (
	"slices"
	"time"
)

// plannedSeconds is the load a run plans, in seconds: the unmeasured pass,
// the rounds and the profiles of runnable. Setting callers up and
// collecting profiles take time besides; the progress estimate, scaled by
// what the finished steps really took, takes that into account.
func plannedSeconds(o Options, runnable []scenario) float64 {
	var total time.Duration
	for _, s := range runnable {
		total += o.Warmup // the unmeasured pass: half warm-up, half window
		total += time.Duration(o.Rounds) * roundLength(o, s)
		if profiled(o, s) {
			total += profileLength(o)
		}
	}
	return total.Seconds()
}

// roundLength is one measured run of s: warm-up and window.
func roundLength(o Options, s scenario) time.Duration {
	return o.Warmup + max(o.Duration, s.minDuration)
}

// profileLength is one profiled run: warm-up, and a second more than the
// profile.
func profileLength(o Options) time.Duration {
	return o.Warmup + o.ProfileDuration + time.Second
}

// profiled reports whether s is profiled after the rounds.
func profiled(o Options, s scenario) bool {
	return o.ProfileDir != "" && (slices.Contains(o.Profile, "all") || slices.Contains(o.Profile, s.name))
}
