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

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/refresh"
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
// the background by a refresh.Loop. It implements token.KeyLookup over an
// atomically swapped *token.KeySet, so lookups never block.
type keySource struct {
	*refresh.Loop // Run, Fetches
	client        authv1.AuthServiceClient
	log           *slog.Logger

	current atomic.Pointer[token.KeySet]

	mu        sync.Mutex            // guards onRemoved
	onRemoved []func(kids []string) // told which kids left the set
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
	k := &keySource{client: cfg.Client, log: cfg.Log}
	loop, err := refresh.New(refresh.Config{
		Fetch: k.fetch, Period: cfg.Refresh, DemandInterval: cfg.UnknownKeyInterval,
		MaxBackoff: MaxReconnectWait, What: "key set", Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	k.Loop = loop
	return k, nil
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

// OnRemoved registers fn to be called, from Run's goroutine, with the key ids
// that a refresh found withdrawn.
func (k *keySource) OnRemoved(fn func(kids []string)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onRemoved = append(k.onRemoved, fn)
}

// RefreshUnknown asks for a key-set refresh because a token carries a kid
// not in the current set, and waits for it (or ctx); see refresh.Loop's
// Demand. It reports whether a refresh happened, in which case the caller
// should look the kid up again.
func (k *keySource) RefreshUnknown(ctx context.Context) bool {
	return k.Demand(ctx)
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
