package grpcauth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// Key-set defaults.
const (
	// DefaultKeySetRefresh is how often a keySource refetches the key set.
	// It must stay well below authsvc's key publish delay (the time between
	// publishing a new key and signing with it), so every replica knows a
	// key before the first token signed with it arrives.
	DefaultKeySetRefresh = 30 * time.Second
	// DefaultUnknownKeyInterval is the least time between two refreshes
	// triggered by tokens with an unknown kid: anyone can send such tokens,
	// and they must not turn into a flood of GetKeySet calls.
	DefaultUnknownKeyInterval = 5 * time.Second
	keySetFetchTimeout        = 5 * time.Second
)

// errNoKeySet is the readiness error before the first key set arrives.
var errNoKeySet = errors.New("no key set loaded from authsvc yet")

// keySourceConfig configures a keySource.
type keySourceConfig struct {
	// Client reaches authsvc's GetKeySet. Required.
	Client authv1.AuthServiceClient
	// Refresh is the periodic refetch interval; zero means
	// DefaultKeySetRefresh.
	Refresh time.Duration
	// UnknownKeyInterval rate-limits refetches triggered by an unknown kid;
	// zero means DefaultUnknownKeyInterval.
	UnknownKeyInterval time.Duration
	// Log receives fetch failures and key changes. Required.
	Log *slog.Logger
}

// keySource is the current verification key set of authsvc, kept fresh in
// the background. It implements token.KeyLookup over an atomically swapped
// *token.KeySet, so lookups never block.
type keySource struct {
	client  authv1.AuthServiceClient
	refresh time.Duration
	log     *slog.Logger
	limiter *rate.Limiter

	current  atomic.Pointer[token.KeySet]
	kick     chan struct{} // asks Run for a fetch now; buffered, one pending at most
	fetches  atomic.Int64  // fetches attempted
	failures atomic.Int64  // fetches failed

	mu          sync.Mutex            // guards the fields below
	next        chan struct{}         // closed when the fetch after the current one completes
	kickPending bool                  // a kick was sent and its fetch has not started
	onRemoved   []func(kids []string) // told which kids left the set
}

// newKeySource returns a keySource with no keys; Run loads them.
func newKeySource(cfg keySourceConfig) (*keySource, error) {
	if cfg.Client == nil || cfg.Log == nil {
		return nil, errors.New("key source: Client and Log are required")
	}
	if cfg.Refresh < 0 || cfg.UnknownKeyInterval < 0 {
		return nil, errors.New("key source: intervals must not be negative")
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultKeySetRefresh
	}
	if cfg.UnknownKeyInterval == 0 {
		cfg.UnknownKeyInterval = DefaultUnknownKeyInterval
	}
	return &keySource{
		client:  cfg.Client,
		refresh: cfg.Refresh,
		log:     cfg.Log,
		limiter: rate.NewLimiter(rate.Every(cfg.UnknownKeyInterval), 1),
		kick:    make(chan struct{}, 1),
		next:    make(chan struct{}),
	}, nil
}

// Key returns the public key with id kid from the current set.
func (k *keySource) Key(kid string) (ed25519.PublicKey, bool) {
	return k.current.Load().Key(kid) // a nil *KeySet has no keys
}

// KeySet returns the current key set, nil before the first fetch.
func (k *keySource) KeySet() *token.KeySet {
	return k.current.Load()
}

// Ready is a readiness check: an error until a key set has been loaded.
func (k *keySource) Ready(context.Context) error {
	if k.current.Load() == nil {
		return errNoKeySet
	}
	return nil
}

// Fetches returns how many key-set fetches have been attempted and how many
// of them failed, for tests and diagnostics.
func (k *keySource) Fetches() (attempted, failed int64) {
	return k.fetches.Load(), k.failures.Load()
}

// OnRemoved registers fn to be called, from Run's goroutine, with the key ids
// that a refresh found withdrawn.
func (k *keySource) OnRemoved(fn func(kids []string)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onRemoved = append(k.onRemoved, fn)
}

// Run fetches the key set now, again every refresh interval and whenever
// RefreshUnknown asks, until ctx is done. Failed fetches are retried with
// exponential backoff; the last good set stays in use meanwhile. Run returns
// nil when ctx is done.
func (k *keySource) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = min(k.refresh, MaxReconnectWait)
	timer := time.NewTimer(k.refresh)
	defer timer.Stop()
	failures := 0
	for {
		k.mu.Lock()
		done := k.next
		k.next = make(chan struct{})
		k.kickPending = false
		k.mu.Unlock()

		err := k.fetch(ctx)
		k.fetches.Add(1)
		if err != nil {
			k.failures.Add(1)
		}
		close(done)
		if ctx.Err() != nil {
			return nil
		}
		wait := k.refresh
		switch {
		case err != nil:
			wait = b.NextBackOff()
			// The first failure of a run is a warning, the retries are noise.
			level := slog.LevelWarn
			if failures > 0 {
				level = slog.LevelDebug
			}
			failures++
			k.log.Log(ctx, level, "key set fetch failed", "error", err, "retry_in", wait, "failures", failures)
		case failures > 0:
			k.log.InfoContext(ctx, "key set fetch recovered", "failures", failures)
			failures = 0
			b.Reset()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-k.kick:
			timer.Stop()
		}
	}
}

// RefreshUnknown asks for a key-set refresh because a token carries a kid
// not in the current set, and waits for it (or ctx). At most one such
// refresh runs per UnknownKeyInterval; callers arriving while one is
// pending share it. It reports whether a refresh happened, in which case
// the caller should look the kid up again.
func (k *keySource) RefreshUnknown(ctx context.Context) bool {
	k.mu.Lock()
	if !k.kickPending {
		if !k.limiter.Allow() {
			k.mu.Unlock()
			return false
		}
		k.kickPending = true
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
	done := k.next
	k.mu.Unlock()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (k *keySource) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, keySetFetchTimeout)
	defer cancel()
	resp, err := k.client.GetKeySet(ctx, &authv1.GetKeySetRequest{})
	if err != nil {
		return fmt.Errorf("GetKeySet: %w", err)
	}
	set, err := token.ParseKeySet([]byte(resp.GetJwksJson()))
	if err != nil {
		return err
	}
	old := k.current.Swap(set)
	var removed []string
	for _, kid := range old.KeyIDs() {
		if _, ok := set.Key(kid); !ok {
			removed = append(removed, kid)
		}
	}
	if old == nil || len(removed) > 0 || set.Len() != old.Len() {
		k.log.InfoContext(ctx, "key set loaded", "kids", set.KeyIDs(), "removed", removed)
	}
	if set.Len() == 0 {
		k.log.WarnContext(ctx, "authsvc published an empty key set: no token can be verified")
	}
	if len(removed) > 0 {
		k.mu.Lock()
		fns := slices.Clone(k.onRemoved)
		k.mu.Unlock()
		for _, fn := range fns {
			fn(removed)
		}
	}
	return nil
}
