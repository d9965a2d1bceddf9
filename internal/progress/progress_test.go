package progress

import (
	"testing"
	"time"
)

func TestLeft(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		elapsed     time.Duration
		done, total float64
		want        time.Duration
		wantOK      bool
	}{
		{"nothing done yet", 10 * time.Second, 0, 10, 0, false},
		{"a quarter in 30s", 30 * time.Second, 2.5, 10, 90 * time.Second, true},
		{"half", time.Minute, 5, 10, time.Minute, true},
		{"slower than planned shows", 2 * time.Minute, 1, 4, 6 * time.Minute, true},
		{"all done", time.Minute, 10, 10, 0, true},
		{"past the plan", time.Minute, 12, 10, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Left(tt.elapsed, tt.done, tt.total)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Left(%v, %v, %v) = %v, %v; want %v, %v", tt.elapsed, tt.done, tt.total, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTrackerDone(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tr := newAt(8, func() time.Time { return clock })
	clock = clock.Add(40 * time.Second)
	if got, want := tr.Done(1), "elapsed 40s, about 4m40s left"; got != want {
		t.Errorf("after 1 of 8 in 40s: %q, want %q", got, want)
	}
	clock = clock.Add(20 * time.Second)
	if got, want := tr.Done(3), "elapsed 1m0s, about 1m0s left"; got != want {
		t.Errorf("after 4 of 8 in 1m: %q, want %q", got, want)
	}
	if got, want := tr.Done(4), "elapsed 1m0s, about 0s left"; got != want {
		t.Errorf("after 8 of 8: %q, want %q", got, want)
	}
}
