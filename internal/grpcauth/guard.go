package grpcauth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/tokencart/tokencart/internal/clientaddr"
	"github.com/tokencart/tokencart/internal/ratelimit"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/token"
)

// Guard defaults.
const (
	// DefaultAuthFailures is how many failed token checks a client address
	// may make in a burst; afterwards one more per DefaultAuthFailureEvery.
	DefaultAuthFailures     = 20
	DefaultAuthFailureEvery = time.Second
	// DefaultAuthFailureAddresses bounds the addresses whose failures are
	// remembered (about 200 bytes each).
	DefaultAuthFailureAddresses = 16384
	// rejectedSize and rejectedTTL bound the cache of tokens that failed:
	// presenting one of them again costs a hash and a map lookup.
	rejectedSize = 4096
	rejectedTTL  = 30 * time.Second
)

// errRejected refuses a token that failed a check moments ago.
var errRejected = errors.New("token failed a recent check")

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Failures is the burst of failed token checks a client address may
	// make before its calls are refused without a check, and Every the
	// time that earns it one more; zero means the defaults.
	Failures int
	Every    time.Duration
	// Addresses bounds the addresses remembered; zero means the default.
	Addresses int
	// TrustedProxyHops names the client address (see clientaddr).
	TrustedProxyHops int
}

// Guard stands in front of every expensive token check (a signature, an
// introspection call) for callers that are not yet authenticated: a client
// address that failed too many checks recently gets RESOURCE_EXHAUSTED,
// with the time to wait, before any check is made, and a token that failed
// moments ago is refused again for a hash and a map lookup. A token that is
// already known good (a cache hit) never reaches the guard, so the clients
// of an address shared with an attacker keep working as long as their
// tokens are cached.
//
// A nil *Guard lets everything through.
type Guard struct {
	failures *ratelimit.PerCaller
	rejected *tokenCache
	hops     int
	now      func() time.Time

	refusedAddr  atomic.Int64 // checks refused: address over its budget
	refusedToken atomic.Int64 // checks refused: the token failed moments ago
	failed       atomic.Int64 // checks that ran and failed
}

// NewGuard returns a Guard for cfg.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if cfg.Failures < 0 || cfg.Every < 0 || cfg.Addresses < 0 || cfg.TrustedProxyHops < 0 {
		return nil, errors.New("guard: limits must not be negative")
	}
	if cfg.Failures == 0 {
		cfg.Failures = DefaultAuthFailures
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultAuthFailureEvery
	}
	if cfg.Addresses == 0 {
		cfg.Addresses = DefaultAuthFailureAddresses
	}
	lim, err := ratelimit.New(float64(time.Second)/float64(cfg.Every), cfg.Failures, max(cfg.Addresses, ratelimit.MinCallers),
		func(ctx context.Context) string { return clientaddr.FromContext(ctx, cfg.TrustedProxyHops) })
	if err != nil {
		return nil, err
	}
	return &Guard{failures: lim, rejected: newTokenCache(rejectedSize), hops: cfg.TrustedProxyHops, now: time.Now}, nil
}

// Attempt is one token check let through by Check.
type Attempt struct {
	g    *Guard
	addr string
	key  tokenKey
}

// Check admits the check of raw from ctx's client address, or refuses it:
// errRejected (Unauthenticated at the edge) for a token that failed within
// the last seconds, RESOURCE_EXHAUSTED with a RetryInfo for an address over
// its failure budget.
func (g *Guard) Check(ctx context.Context, raw string) (Attempt, error) {
	return g.check(ctx, keyOf(raw))
}

func (g *Guard) check(ctx context.Context, k tokenKey) (Attempt, error) {
	if g == nil {
		return Attempt{}, nil
	}
	if _, ok := g.rejected.get(k, g.now()); ok {
		g.refusedToken.Add(1)
		return Attempt{}, errRejected
	}
	addr := clientaddr.FromContext(ctx, g.hops)
	if wait, over := g.failures.Exceeded(addr); over {
		g.refusedAddr.Add(1)
		return Attempt{}, rpcerr.Exhausted(ReasonAuthFailuresLimited, "too many failed authentications from this address; retry later", wait)
	}
	return Attempt{g: g, addr: addr, key: k}, nil
}

// Failed records that the check failed with err: the address spends one of
// its failures and, unless err may pass on a later try (a key not known
// yet, a token not valid yet), the token is refused without a check for a
// while.
func (a Attempt) Failed(err error) {
	if a.g == nil {
		return
	}
	a.g.failed.Add(1)
	a.g.failures.Spend(a.addr)
	if errors.Is(err, token.ErrUnknownKey) || errors.Is(err, token.ErrNotYetValid) {
		return
	}
	now := a.g.now()
	a.g.rejected.put(a.key, token.Claims{}, now.Add(rejectedTTL), now)
}

// Counts returns how many checks the guard refused (address over budget,
// token that failed moments ago) and how many it let through that failed.
func (g *Guard) Counts() (refusedAddress, refusedToken, failed int64) {
	if g == nil {
		return 0, 0, 0
	}
	return g.refusedAddr.Load(), g.refusedToken.Load(), g.failed.Load()
}
