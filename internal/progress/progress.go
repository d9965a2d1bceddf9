// Package progress tells how far a long run (make bench, make chaos) is and
// about how long it has left, from the share of its planned work done so
// far: the time left is the time taken so far, scaled by the work left over
// the work done. A machine busier or quieter than the plan assumed shows in
// the estimate as soon as the first steps finish.
package progress

import (
	"fmt"
	"sync"
	"time"
)

// Tracker follows one run. Its methods may be called concurrently.
type Tracker struct {
	mu    sync.Mutex // guards done
	start time.Time
	now   func() time.Time
	total float64 // planned work, in any unit (seconds of planned load, cycles)
	done  float64
}

// New returns a Tracker of a run of total units of work, starting now.
func New(total float64) *Tracker {
	return newAt(total, time.Now)
}

func newAt(total float64, now func() time.Time) *Tracker {
	return &Tracker{start: now(), now: now, total: total}
}

// Done records that work more units are finished and returns the run's
// progress as "elapsed 1m2s, about 3m10s left".
func (t *Tracker) Done(work float64) string {
	t.mu.Lock()
	t.done += work
	done := t.done
	t.mu.Unlock()
	elapsed := t.now().Sub(t.start)
	s := "elapsed " + elapsed.Round(time.Second).String()
	if left, ok := Left(elapsed, done, t.total); ok {
		s += fmt.Sprintf(", about %v left", left.Round(time.Second))
	}
	return s
}

// Left estimates the time a run has left when done of its total units of
// work took elapsed; ok is false before any work is done. A run past its
// plan has nothing left.
func Left(elapsed time.Duration, done, total float64) (left time.Duration, ok bool) {
	if done <= 0 {
		return 0, false
	}
	if done >= total {
		return 0, true
	}
	return time.Duration(float64(elapsed) * (total - done) / done), true
}
