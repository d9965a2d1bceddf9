package grpcauth

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/token"
)

// Introspection defaults.
const (
	// DefaultIntrospectCacheTTL is how long an "active" answer from
	// IntrospectToken is reused. It bounds how late a revocation is noticed
	// when introspection is the revocation check.
	DefaultIntrospectCacheTTL = time.Second
	introspectTimeout         = 2 * time.Second
)

var (
	// errAuthUnavailable is returned when authsvc cannot be asked; the
	// client may retry, possibly on another replica.
	errAuthUnavailable = rpcerr.Errorf(codes.Unavailable, ReasonAuthUnavailable, "cannot check the token now; retry")
	errInactive        = errors.New("token not active")
	// errServiceRefused: authsvc does not accept this replica's service
	// credential (a configuration error the replica's log names).
	errServiceRefused = rpcerr.Errorf(codes.Unavailable, ReasonAuthUnavailable, "cannot check the token now: authsvc refused this service's credential; retry")
)

// introspectorConfig configures an introspector.
type introspectorConfig struct {
	// Client reaches authsvc's IntrospectToken. Required.
	Client authv1.AuthServiceClient
	// Issuer and Audience are checked on active answers too. Required.
	Issuer, Audience string
	// CacheTTL is how long an active answer is reused (never past the
	// token's exp); zero disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the cache, in entries; zero disables it.
	CacheSize int
	// Guard limits the introspections of failing callers (Authenticate);
	// nil means none.
	Guard *Guard
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// introspector authenticates a token by asking authsvc (RFC 7662 style),
// with a short, bounded cache of active answers. It is the whole
// authenticator in remote mode and the revocation check of the local mode
// while the revocation feed is stale.
type introspector struct {
	client   authv1.AuthServiceClient
	issuer   string
	audience string
	ttl      time.Duration
	cache    *tokenCache
	guard    *Guard
	now      func() time.Time
}

// newIntrospector returns an introspector for cfg.
func newIntrospector(cfg introspectorConfig) (*introspector, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("introspector: Client is required")
	case cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("introspector: Issuer and Audience are required")
	case cfg.CacheTTL < 0 || cfg.CacheSize < 0:
		return nil, errors.New("introspector: cache TTL and size must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	i := &introspector{client: cfg.Client, issuer: cfg.Issuer, audience: cfg.Audience, ttl: cfg.CacheTTL, guard: cfg.Guard, now: cfg.Now}
	if cfg.CacheTTL > 0 {
		i.cache = newTokenCache(cfg.CacheSize)
	}
	return i, nil
}

// Authenticate asks authsvc whether raw is active. Text that is not even
// shaped like one of our tokens is refused without a call, and a caller
// that keeps presenting tokens authsvc does not know meets the Guard, so
// garbage cannot be amplified into load on authsvc.
func (i *introspector) Authenticate(ctx context.Context, raw string) (token.Claims, error) {
	k := keyOf(raw)
	if c, ok := i.cache.get(k, i.now()); ok {
		return c, nil
	}
	attempt, err := i.guard.check(ctx, k)
	if err != nil {
		return token.Claims{}, err
	}
	c, err := i.authenticate(ctx, raw, k)
	if errors.Is(err, errInactive) || errors.Is(err, token.ErrMalformed) || errors.Is(err, token.ErrTooLarge) {
		attempt.Failed(err)
	}
	return c, err
}

func (i *introspector) authenticate(ctx context.Context, raw string, k tokenKey) (token.Claims, error) {
	now := i.now()
	if c, ok := i.cache.get(k, now); ok {
		return c, nil
	}
	kid, err := token.KeyID(raw)
	if err != nil {
		return token.Claims{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, introspectTimeout)
	defer cancel()
	resp, err := i.client.IntrospectToken(callCtx, &authv1.IntrospectTokenRequest{Token: raw})
	if status.Code(err) == codes.Unauthenticated || status.Code(err) == codes.PermissionDenied {
		// authsvc refused this service, not the token: say so once per
		// call, as Unavailable, so the client retries elsewhere.
		return token.Claims{}, errServiceRefused
	}
	if err != nil {
		if ctx.Err() != nil {
			return token.Claims{}, status.FromContextError(ctx.Err()).Err()
		}
		return token.Claims{}, errAuthUnavailable
	}
	if !resp.GetActive() || resp.GetIssuer() != i.issuer || !slices.Contains(resp.GetAudience(), i.audience) ||
		resp.GetSubject() == "" || resp.GetTokenId() == "" || resp.GetExpireTime() == nil {
		return token.Claims{}, errInactive
	}
	c := token.Claims{
		Issuer:    resp.GetIssuer(),
		Subject:   resp.GetSubject(),
		Audience:  resp.GetAudience(),
		Roles:     resp.GetRoles(),
		TokenID:   resp.GetTokenId(),
		SessionID: resp.GetSessionId(),
		Expiry:    resp.GetExpireTime().AsTime(),
		KeyID:     kid,
	}
	if t := resp.GetIssueTime(); t != nil {
		c.IssuedAt = t.AsTime()
	}
	if t := resp.GetNotBeforeTime(); t != nil {
		c.NotBefore = t.AsTime()
	}
	i.cache.put(k, c, minTime(now.Add(i.ttl), c.Expiry), now)
	return c, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
