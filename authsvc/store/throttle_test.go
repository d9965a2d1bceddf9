package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
)

func TestLoginFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		a, b := open(), open()
		keys := []string{"account:x", "address:1.2.3.4"}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				if err := []*store.Store{a, b}[i%2].RecordLoginFailure(ctx, keys, t0, t0.Add(-time.Minute)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := a.LoginFailures(ctx, append(keys, "account:other"), t0.Add(-time.Minute))
		if err != nil || len(got) != 2 {
			t.Fatalf("LoginFailures = %+v, %v", got, err)
		}
		for _, f := range got {
			if f.Failures != 10 || !f.Last.Equal(t0) {
				t.Errorf("%s: %d failures, last %v; want 10 at %v", f.Key, f.Failures, f.Last, t0)
			}
		}
		// A failure after the window restarts the count.
		later := t0.Add(time.Hour)
		if err := b.RecordLoginFailure(ctx, keys[:1], later, later.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ = b.LoginFailures(ctx, keys, later.Add(-time.Minute))
		if len(got) != 1 || got[0].Key != keys[0] || got[0].Failures != 1 {
			t.Errorf("after the window: %+v, want 1 failure of %s", got, keys[0])
		}
		if err := a.ResetLoginFailures(ctx, keys[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.LoginFailures(ctx, keys, t0.Add(-time.Hour)); len(got) != 1 || got[0].Key != keys[1] {
			t.Errorf("after reset: %+v", got)
		}
		if err := a.Prune(ctx, authsvc.PruneTimes{Now: later, RevokedBefore: later, FailuresBefore: later, LoginAddressesBefore: later}); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.LoginFailures(ctx, keys, time.Time{}); len(got) != 0 {
			t.Errorf("after prune: %+v", got)
		}
	})
}

// TestCountCall counts calls from two handles at once: every call is
// counted once, the window closes at its end and the next call opens a
// new one, and keys count apart.
func TestCountCall(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		stores := []*store.Store{open(), open()}
		const n = 20
		counts := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c, err := stores[i%2].CountCall(ctx, "k", t0.Add(time.Duration(i)*time.Millisecond), time.Minute)
				if err != nil {
					t.Error(err)
				}
				counts[i] = c.Calls
			})
		}
		wg.Wait()
		seen := map[int]bool{}
		for _, c := range counts {
			seen[c] = true
		}
		for want := 1; want <= n; want++ {
			if !seen[want] {
				t.Fatalf("counts %v: %d missing, each call must be counted once", counts, want)
			}
		}
		c, err := stores[0].CountCall(ctx, "k", t0.Add(30*time.Second), time.Minute)
		if err != nil || c.Calls != n+1 {
			t.Errorf("call %d in the window = %+v, %v", n+1, c, err)
		}
		end := c.WindowEnd
		if end.Before(t0.Add(time.Minute)) || end.After(t0.Add(time.Minute+n*time.Millisecond)) {
			t.Errorf("window ends %v, want a minute after its first call", end)
		}
		if c, _ := stores[1].CountCall(ctx, "other", t0, time.Minute); c.Calls != 1 {
			t.Errorf("another key counts %d, want 1", c.Calls)
		}
		c, err = stores[1].CountCall(ctx, "k", end, time.Minute)
		if err != nil || c.Calls != 1 || !c.WindowEnd.Equal(end.Add(time.Minute)) {
			t.Errorf("first call after the window = %+v, %v; want 1 in a new window", c, err)
		}
		if err := stores[0].Prune(ctx, authsvc.PruneTimes{Now: end.Add(2 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if c, _ := stores[0].CountCall(ctx, "k", end.Add(2*time.Minute), time.Minute); c.Calls != 1 {
			t.Errorf("after prune: %d calls", c.Calls)
		}
	})
}

// TestLoginAddresses: an address is known for an account from its
// successful login until it is forgotten, and only for that account.
func TestLoginAddresses(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		a, b := open(), open()
		if err := a.RememberLoginAddress(ctx, "x@example.com", "192.0.2.1", t0); err != nil {
			t.Fatal(err)
		}
		if err := b.RememberLoginAddress(ctx, "x@example.com", "192.0.2.1", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			account, address string
			since            time.Time
			want             bool
		}{
			{"x@example.com", "192.0.2.1", t0.Add(time.Hour), true},
			{"x@example.com", "192.0.2.1", t0.Add(2 * time.Hour), false},
			{"x@example.com", "192.0.2.2", t0, false},
			{"y@example.com", "192.0.2.1", t0, false},
		} {
			if got, err := b.KnownLoginAddress(ctx, tt.account, tt.address, tt.since); got != tt.want || err != nil {
				t.Errorf("KnownLoginAddress(%s, %s, %v) = %v, %v; want %v", tt.account, tt.address, tt.since, got, err, tt.want)
			}
		}
		if err := a.Prune(ctx, authsvc.PruneTimes{LoginAddressesBefore: t0.Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.KnownLoginAddress(ctx, "x@example.com", "192.0.2.1", time.Time{}); got {
			t.Error("address kept after prune")
		}
	})
}
