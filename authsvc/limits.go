package authsvc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxRefusals bounds the keys a replica remembers as refused (about 100
// bytes each).
const maxRefusals = 8192

// refusals remembers, per replica, the keys that a limit counted in the
// store has refused, until the window that refused them closes: the calls
// that follow are refused for a map lookup instead of a store write, so a
// caller over a limit costs the store nothing more. It only ever refuses
// what the store would refuse. When full it forgets some keys, whose next
// call then asks the store again.
type refusals struct {
	mu    sync.Mutex // guards until
	until map[string]time.Time
}

func newRefusals() *refusals { return &refusals{until: make(map[string]time.Time)} }

// refused returns how long key stays refused at now, if it is.
func (r *refusals) refused(key string, now time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	end, ok := r.until[key]
	if !ok {
		return 0, false
	}
	if !now.Before(end) {
		delete(r.until, key)
		return 0, false
	}
	return end.Sub(now), true
}

// remember refuses key until end.
func (r *refusals) remember(key string, end, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.until) >= maxRefusals {
		// Expired keys first; then any (map order is random) down to
		// seven eighths, so that the sweeps are rare.
		for k, e := range r.until {
			if !now.Before(e) {
				delete(r.until, k)
			}
		}
		for k := range r.until {
			if len(r.until) < maxRefusals*7/8 {
				break
			}
			delete(r.until, k)
		}
	}
	r.until[key] = end
}

// countCall counts a call under key in the store, so that the limit holds
// across replicas, and refuses it (ResourceExhausted, with the time until
// the window closes) when the window already had limit calls; from then
// until the window closes this replica refuses key without the store. The
// key's prefix, up to its first colon, names the limit in the metrics.
func (s *Service) countCall(ctx context.Context, key string, now time.Time, limit int, window time.Duration, what string) error {
	name, _, _ := strings.Cut(key, ":")
	if wait, ok := s.refusals.refused(key, now); ok {
		s.metrics.limited.WithLabelValues(name).Inc()
		return limited(what, wait)
	}
	n, err := s.store.CountCall(ctx, key, now, window)
	if err != nil {
		return fmt.Errorf("count call: %w", err)
	}
	if n.Calls <= limit {
		return nil
	}
	s.refusals.remember(key, n.WindowEnd, now)
	s.metrics.limited.WithLabelValues(name).Inc()
	return limited(what, n.WindowEnd.Sub(now))
}
