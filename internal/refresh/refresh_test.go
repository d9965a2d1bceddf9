package refresh_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/refresh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a Loop over fetch until the test ends.
func start(t *testing.T, fetch func(context.Context) error, demandInterval time.Duration) *refresh.Loop {
	t.Helper()
	l, err := refresh.New(refresh.Config{Fetch: fetch, Period: time.Hour, DemandInterval: demandInterval, What: "test", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	expect.Eventually(t, 10*time.Second, "first fetch", func() bool { n, _ := l.Fetches(); return n >= 1 })
	return l
}

// TestDemandShared: many callers demanding at once share one fetch, and
// more demands within the interval fetch nothing.
func TestDemandShared(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	l := start(t, func(context.Context) error { n.Add(1); return nil }, time.Hour)
	var wg sync.WaitGroup
	var refreshed atomic.Int64
	for range 50 {
		wg.Go(func() {
			if l.Demand(context.Background()) {
				refreshed.Add(1)
			}
		})
	}
	wg.Wait()
	for range 10 {
		if l.Demand(context.Background()) {
			refreshed.Add(1)
		}
	}
	if got := n.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (the first and one demanded)", got)
	}
	if refreshed.Load() == 0 || refreshed.Load() > 50 {
		t.Errorf("%d demands saw a fetch, want between 1 and the 50 concurrent ones", refreshed.Load())
	}
}

// TestRetryAfterFailure: a failed fetch is retried (with backoff, well
// before the period) and counted.
func TestRetryAfterFailure(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	l := start(t, func(context.Context) error {
		if n.Add(1) < 3 {
			return errors.New("down")
		}
		return nil
	}, time.Hour)
	expect.Eventually(t, 10*time.Second, "recovered", func() bool { return n.Load() >= 3 })
	if attempted, failed := l.Fetches(); attempted < 3 || failed != 2 {
		t.Errorf("Fetches() = %d, %d; want at least 3 attempts, 2 failed", attempted, failed)
	}
}
