package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/token"
)

// StalePolicy says what the local authenticator does while the revocation
// feed is stale, that is while it cannot know whether a token was revoked.
type StalePolicy string

// The stale policies.
const (
	// StaleIntrospect asks authsvc about every token (through the
	// introspector's short cache) until the feed is fresh again.
	StaleIntrospect StalePolicy = "introspect"
	// StaleRefuse refuses every authenticated call with Unavailable until
	// the feed is fresh again.
	StaleRefuse StalePolicy = "refuse"
)

// errRevocationUnknown refuses a call whose token cannot be checked for
// revocation (StaleRefuse).
var errRevocationUnknown = rpcerr.Errorf(codes.Unavailable, ReasonAuthUnavailable, "token revocation status unknown; retry later")

// localConfig configures a localAuthenticator.
type localConfig struct {
	// Verifier checks signatures and claims; its key lookup should be Keys.
	// Required.
	Verifier *token.Verifier
	// Keys is refreshed when a token names an unknown kid, and tells the
	// cache which keys were withdrawn. Required.
	Keys *keySource
	// Revocations is consulted on every call. Required.
	Revocations *revocationFeed
	// Staleness is how long the revocation feed may be silent before
	// StalePolicy applies. Required (> 0).
	Staleness time.Duration
	// StalePolicy is StaleIntrospect (introspector required) or StaleRefuse.
	StalePolicy StalePolicy
	// Introspector answers while the feed is stale under StaleIntrospect.
	Introspector *introspector
	// CacheSize bounds the verified-token cache in entries; zero disables
	// the cache (every call verifies the signature).
	CacheSize int
	// Guard limits the signature checks of failing callers; nil means none.
	Guard *Guard
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// localAuthenticator authenticates tokens without calling authsvc on the hot path: a
// signature and claims check against the published key set, remembered in
// a cache of verified tokens, plus the revocation set on every call,
// cache hit or not.
type localAuthenticator struct {
	verifier  *token.Verifier
	keys      *keySource
	revs      *revocationFeed
	staleness time.Duration
	policy    StalePolicy
	intro     *introspector
	cache     *tokenCache
	guard     *Guard
	now       func() time.Time
}

// newLocalAuthenticator returns a localAuthenticator for cfg.
func newLocalAuthenticator(cfg localConfig) (*localAuthenticator, error) {
	switch {
	case cfg.Verifier == nil || cfg.Keys == nil || cfg.Revocations == nil:
		return nil, errors.New("local authenticator: Verifier, Keys and Revocations are required")
	case cfg.Staleness <= 0:
		return nil, errors.New("local authenticator: Staleness must be positive")
	case cfg.CacheSize < 0:
		return nil, errors.New("local authenticator: CacheSize must not be negative")
	case cfg.StalePolicy == StaleIntrospect && cfg.Introspector == nil:
		return nil, errors.New("local authenticator: the introspect stale policy needs an introspector")
	case cfg.StalePolicy != StaleIntrospect && cfg.StalePolicy != StaleRefuse:
		return nil, fmt.Errorf("local authenticator: unknown stale policy %q", cfg.StalePolicy)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &localAuthenticator{
		verifier:  cfg.Verifier,
		keys:      cfg.Keys,
		revs:      cfg.Revocations,
		staleness: cfg.Staleness,
		policy:    cfg.StalePolicy,
		intro:     cfg.Introspector,
		cache:     newTokenCache(cfg.CacheSize),
		guard:     cfg.Guard,
		now:       cfg.Now,
	}
	cfg.Keys.OnRemoved(l.cache.dropKeyIDs)
	return l, nil
}

// Authenticate implements Authenticator. A token found in the cache costs
// a hash and two map lookups; any other goes through the Guard before its
// signature is checked.
func (l *localAuthenticator) Authenticate(ctx context.Context, raw string) (token.Claims, error) {
	now := l.now()
	k := keyOf(raw)
	c, ok := l.cache.get(k, now)
	if !ok {
		attempt, err := l.guard.check(ctx, k)
		if err != nil {
			return token.Claims{}, err
		}
		c, err = l.verifier.Verify(raw)
		if errors.Is(err, token.ErrUnknownKey) && l.keys.RefreshUnknown(ctx) {
			c, err = l.verifier.Verify(raw)
		}
		if err != nil {
			attempt.Failed(err)
			return token.Claims{}, err
		}
		// The entry dies at exp: past it, Verify decides (leeway included).
		l.cache.put(k, c, c.Expiry, now)
	}
	if l.revs.Revoked(c) {
		return token.Claims{}, errInactive
	}
	if !l.Stale(now) {
		return c, nil
	}
	if l.policy == StaleRefuse {
		return token.Claims{}, errRevocationUnknown
	}
	// Introspection is only the revocation check here: the claims that
	// count are the ones this replica verified.
	if _, err := l.intro.authenticate(ctx, raw, k); err != nil {
		return token.Claims{}, err
	}
	return c, nil
}

// Stale reports whether, at now, the revocation set cannot be trusted: the
// feed has been silent for longer than the staleness bound (or has never
// spoken), or the set is not complete (its first replay has not ended, or
// it overflowed its capacity).
func (l *localAuthenticator) Stale(now time.Time) bool {
	last := l.revs.lastMsg.Load()
	return last == 0 || now.UnixNano()-last > int64(l.staleness) || !l.revs.Complete()
}
