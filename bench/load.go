package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// call is one request of one caller. Callers prepare everything that is not
// part of a request (tokens, contexts, messages) before the load starts.
type call func(ctx context.Context) error

// loadResult is what one closed-loop run measured inside its window.
type loadResult struct {
	calls  uint64 // successful calls that completed inside the window
	errors uint64 // failed calls that completed inside the window
	errMsg string // the most frequent failure, for the report
	hist   hist   // latency of the successful calls
	cpu    cpuUsage
}

func (r *loadResult) throughput() float64 {
	if r.cpu.wall <= 0 {
		return 0
	}
	return float64(r.calls) / r.cpu.wall.Seconds()
}

// perCall returns d spread over the successful calls, in microseconds.
func (r *loadResult) perCall(d time.Duration) float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(r.calls)
}

type callerStats struct {
	hist   hist
	calls  uint64
	errors uint64
	errs   map[string]int
}

// runLoad runs a closed loop: each of calls in a goroutine of its own,
// issuing its next request as soon as the previous one returns, for warmup
// and then duration. Only calls completing inside the duration window
// count. pids are the processes whose CPU time the window charges; atStart,
// if not nil, runs when the window opens (to start profiles).
func runLoad(ctx context.Context, calls []call, warmup, duration time.Duration, pids []int, atStart func()) loadResult {
	windowStart := time.Now().Add(warmup)
	windowEnd := windowStart.Add(duration)
	stats := make([]callerStats, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			st := &stats[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(windowEnd) {
					return
				}
				err := c(ctx)
				t1 := time.Now()
				if t1.Before(windowStart) || !t1.Before(windowEnd) {
					continue
				}
				if err != nil {
					st.errors++
					if st.errs == nil {
						st.errs = map[string]int{}
					}
					st.errs[errText(err)]++
					continue
				}
				st.calls++
				st.hist.record(t1.Sub(t0))
			}
		})
	}
	sleepUntil(ctx, windowStart)
	before := takeCPU(pids)
	if atStart != nil {
		atStart()
	}
	sleepUntil(ctx, windowEnd)
	after := takeCPU(pids)
	wg.Wait()

	res := loadResult{cpu: before.until(after)}
	errs := map[string]int{}
	for i := range stats {
		st := &stats[i]
		res.calls += st.calls
		res.errors += st.errors
		res.hist.merge(&st.hist)
		for k, v := range st.errs {
			errs[k] += v
		}
	}
	res.errMsg = mostFrequent(errs)
	return res
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// errText is an error's gRPC code and message, short enough for a table.
func errText(err error) string {
	s, _ := status.FromError(err)
	msg := s.Message()
	if len(msg) > 80 {
		msg = msg[:80] + "…"
	}
	return fmt.Sprintf("%s: %s", s.Code(), strings.ReplaceAll(msg, "|", "/"))
}

func mostFrequent(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return ""
	}
	return fmt.Sprintf("%s (×%d)", keys[0], m[keys[0]])
}
