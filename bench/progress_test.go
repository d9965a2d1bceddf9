package bench

import (
	"testing"
	"time"
)

func TestPlannedSeconds(t *testing.T) {
	t.Parallel()
	o := Options{Rounds: 5, Warmup: 300 * time.Millisecond, Duration: 2 * time.Second, ProfileDuration: 5 * time.Second}
	short := scenario{name: "a"}
	long := scenario{name: "b", minDuration: 3 * time.Second}
	tests := []struct {
		name     string
		profile  []string
		runnable []scenario
		want     float64
	}{
		// Each: 0.3 s of the unmeasured pass, then 5 rounds of 0.3 s + its window.
		{"one", nil, []scenario{short}, 0.3 + 5*2.3},
		{"a longer window", nil, []scenario{short, long}, 0.3 + 5*2.3 + 0.3 + 5*3.3},
		// A profile: 0.3 s warm-up + 5 s + 1 s.
		{"one profiled", []string{"b"}, []scenario{short, long}, 0.3 + 5*2.3 + 0.3 + 5*3.3 + 6.3},
		{"all profiled", []string{"all"}, []scenario{short, long}, 0.3 + 5*2.3 + 0.3 + 5*3.3 + 2*6.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := o
			o.Profile = tt.profile
			o.ProfileDir = "/tmp/profiles"
			if got := plannedSeconds(o, tt.runnable); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("plannedSeconds = %v, want %v", got, tt.want)
			}
		})
	}
}
