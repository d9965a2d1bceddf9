// Package refresh keeps a fetched value fresh: it fetches now, again every
// period, and on demand when a caller finds the value out of date (a token
// names a key id the current key set lacks), at most once per interval
// however many callers ask, so that anyone who can send a request cannot
// turn it into a flood of fetches. Failed fetches are retried with
// exponential backoff while the last good value stays in use.
//
// The value itself is the caller's: Fetch stores it (typically in an
// atomic.Pointer) so that readers never block.
package refresh

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"
)

// Config configures a Loop.
type Config struct {
	// Fetch fetches the value and stores it; an error keeps the previous
	// one. It bounds its own time. Required.
	Fetch func(ctx context.Context) error
	// Period is the time between two scheduled fetches. Required (> 0).
	Period time.Duration
	// DemandInterval is the least time between two fetches that Demand
	// triggers. Required (> 0).
	DemandInterval time.Duration
	// MaxBackoff caps the wait between retries of a failed fetch; zero or
	// more than Period means Period.
	MaxBackoff time.Duration
	// What names the value in log messages ("key set").
	What string
	// Log receives fetch failures and recoveries. Required.
	Log *slog.Logger
}

// Loop runs Config.Fetch on schedule and on demand.
type Loop struct {
	fetch      func(ctx context.Context) error
	period     time.Duration
	maxBackoff time.Duration
	what       string
	log        *slog.Logger
	limiter    *rate.Limiter

	kick     chan struct{} // asks Run for a fetch now; buffered, one pending at most
	fetches  atomic.Int64  // fetches attempted
	failures atomic.Int64  // fetches failed

	mu          sync.Mutex    // guards the fields below
	next        chan struct{} // closed when the fetch after the current one completes
	kickPending bool          // a kick was sent and its fetch has not started
}

// New returns a Loop for cfg; Run starts it.
func New(cfg Config) (*Loop, error) {
	switch {
	case cfg.Fetch == nil || cfg.Log == nil:
		return nil, errors.New("refresh: Fetch and Log are required")
	case cfg.Period <= 0 || cfg.DemandInterval <= 0 || cfg.MaxBackoff < 0:
		return nil, errors.New("refresh: Period and DemandInterval must be positive, MaxBackoff not negative")
	}
	if cfg.MaxBackoff == 0 || cfg.MaxBackoff > cfg.Period {
		cfg.MaxBackoff = cfg.Period
	}
	return &Loop{
		fetch:      cfg.Fetch,
		period:     cfg.Period,
		maxBackoff: cfg.MaxBackoff,
		what:       cfg.What,
		log:        cfg.Log,
		limiter:    rate.NewLimiter(rate.Every(cfg.DemandInterval), 1),
		kick:       make(chan struct{}, 1),
		next:       make(chan struct{}),
	}, nil
}

// Fetches returns how many fetches have been attempted and how many of them
// failed, for metrics and tests.
func (l *Loop) Fetches() (attempted, failed int64) {
	return l.fetches.Load(), l.failures.Load()
}

// Run fetches now, again every period and whenever Demand asks, until ctx
// is done; it returns nil then.
func (l *Loop) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = l.maxBackoff
	timer := time.NewTimer(l.period)
	defer timer.Stop()
	failures := 0
	for {
		l.mu.Lock()
		done := l.next
		l.next = make(chan struct{})
		l.kickPending = false
		l.mu.Unlock()

		err := l.fetch(ctx)
		l.fetches.Add(1)
		if err != nil {
			l.failures.Add(1)
		}
		close(done)
		if ctx.Err() != nil {
			return nil
		}
		wait := l.period
		switch {
		case err != nil:
			wait = b.NextBackOff()
			// The first failure of a run is a warning, the retries are noise.
			level := slog.LevelWarn
			if failures > 0 {
				level = slog.LevelDebug
			}
			failures++
			l.log.Log(ctx, level, l.what+" fetch failed", "error", err, "retry_in", wait, "failures", failures)
		case failures > 0:
			l.log.InfoContext(ctx, l.what+" fetch recovered", "failures", failures)
			failures = 0
			b.Reset()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-l.kick:
			timer.Stop()
		}
	}
}

// Demand asks for a fetch now, because a caller found the value out of
// date, and waits for it (or ctx). At most one such fetch runs per
// DemandInterval; callers arriving while one is pending share it. It
// reports whether a fetch completed, in which case the caller should look
// again.
func (l *Loop) Demand(ctx context.Context) bool {
	l.mu.Lock()
	if !l.kickPending {
		if !l.limiter.Allow() {
			l.mu.Unlock()
			return false
		}
		l.kickPending = true
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	done := l.next
	l.mu.Unlock()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
