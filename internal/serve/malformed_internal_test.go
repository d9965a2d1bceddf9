package serve

import (
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := logLimiter{interval: time.Second}
	steps := []struct {
		at             time.Duration // after t0
		wantOK         bool
		wantSuppressed int
	}{
		{0, true, 0},
		{time.Millisecond, false, 0},
		{500 * time.Millisecond, false, 0},
		{999 * time.Millisecond, false, 0},
		{time.Second, true, 3},
		{time.Second + time.Millisecond, false, 0},
		{5 * time.Second, true, 1},
		{6 * time.Second, true, 0},
		// A clock step backwards refuses until the interval has passed.
		{5500 * time.Millisecond, false, 0},
		{7 * time.Second, true, 1},
	}
	for i, s := range steps {
		ok, suppressed := l.allow(t0.Add(s.at))
		if ok != s.wantOK || suppressed != s.wantSuppressed {
			t.Errorf("step %d (t0+%v): allow = %v, %d; want %v, %d", i, s.at, ok, suppressed, s.wantOK, s.wantSuppressed)
		}
	}
}
