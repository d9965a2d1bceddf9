package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// Validation modes.
const (
	// ModeLocal verifies tokens in process (Local).
	ModeLocal = "local"
	// ModeRemote introspects every token at authsvc (Introspector).
	ModeRemote = "remote"
)

// Defaults of Config.
const (
	// DefaultTokenCacheSize bounds the verified-token cache: about 420 bytes
	// per entry (measured by TestTokenCacheMemory), so ≈ 7 MiB when full.
	DefaultTokenCacheSize = 16384
	// introspectCacheSize bounds the introspection cache, whose entries
	// live DefaultIntrospectCacheTTL or so.
	introspectCacheSize = 8192
)

// Config configures a Validator: how a service checks the access tokens
// that authsvc mints.
type Config struct {
	// Mode is ModeLocal or ModeRemote.
	Mode string
	// Issuer and Audience are what tokens must carry.
	Issuer, Audience string
	// Leeway is the clock skew tolerated on exp/nbf/iat; zero means
	// token.DefaultLeeway.
	Leeway time.Duration
	// KeySetRefresh is the period of key-set refetches (local mode).
	KeySetRefresh time.Duration
	// RevocationStaleness is how long the revocation feed may be silent
	// before StalePolicy applies (local mode).
	RevocationStaleness time.Duration
	// StalePolicy is what to do while the feed is stale (local mode).
	StalePolicy StalePolicy
	// TokenCacheSize bounds the verified-token cache (local mode); zero
	// disables it.
	TokenCacheSize int
	// IntrospectCacheTTL is how long an introspection answer is reused
	// (remote mode, and local mode while stale); zero disables that cache.
	IntrospectCacheTTL time.Duration
	// RevocationCapacity bounds the revocation set (local mode); zero
	// means DefaultRevocationCapacity.
	RevocationCapacity int
	// Guard limits the token checks of callers that keep failing them.
	Guard GuardConfig
	// Log receives key-set and revocation-feed events. Required.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Validate reports every invalid field, naming what to fix.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != ModeLocal && c.Mode != ModeRemote {
		errs = append(errs, fmt.Errorf("auth mode must be %q or %q, got %q", ModeLocal, ModeRemote, c.Mode))
	}
	if c.Issuer == "" || c.Audience == "" {
		errs = append(errs, errors.New("token issuer and audience are required"))
	}
	if c.Leeway < 0 || c.Leeway > token.MaxLeeway {
		errs = append(errs, fmt.Errorf("token leeway must be within [0, %v], got %v", token.MaxLeeway, c.Leeway))
	}
	if c.KeySetRefresh <= 0 {
		errs = append(errs, fmt.Errorf("key-set refresh interval must be positive, got %v", c.KeySetRefresh))
	}
	if c.RevocationStaleness <= 0 {
		errs = append(errs, fmt.Errorf("revocation staleness must be positive, got %v", c.RevocationStaleness))
	}
	if c.StalePolicy != StaleIntrospect && c.StalePolicy != StaleRefuse {
		errs = append(errs, fmt.Errorf("stale policy must be %q or %q, got %q", StaleIntrospect, StaleRefuse, c.StalePolicy))
	}
	if c.TokenCacheSize < 0 {
		errs = append(errs, fmt.Errorf("token cache size must not be negative, got %d", c.TokenCacheSize))
	}
	if c.IntrospectCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("introspection cache TTL must not be negative, got %v", c.IntrospectCacheTTL))
	}
	if c.RevocationCapacity < 0 {
		errs = append(errs, fmt.Errorf("revocation capacity must not be negative, got %d", c.RevocationCapacity))
	}
	if c.Guard.Failures < 0 || c.Guard.Every < 0 || c.Guard.Addresses < 0 || c.Guard.TrustedProxyHops < 0 {
		errs = append(errs, errors.New("failed-authentication limits must not be negative"))
	}
	return errors.Join(errs...)
}

// Validator is a service's whole token check, built from Config: in local
// mode a KeySource, a Revocations feed and a Local authenticator (with an
// Introspector for the stale fallback); in remote mode an Introspector.
// It implements Authenticator; Run keeps its background state fresh.
type Validator struct {
	Authenticator
	keys  *KeySource
	revs  *Revocations
	local *Local
	guard *Guard
}

// NewValidator returns a Validator that reaches authsvc over conn.
func NewValidator(conn grpc.ClientConnInterface, cfg Config) (*Validator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		return nil, errors.New("validator: Log is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := authv1.NewAuthServiceClient(conn)
	guard, err := NewGuard(cfg.Guard)
	if err != nil {
		return nil, err
	}
	intro, err := NewIntrospector(IntrospectorConfig{
		Client: client, Issuer: cfg.Issuer, Audience: cfg.Audience,
		CacheTTL: cfg.IntrospectCacheTTL, CacheSize: introspectCacheSize, Guard: guard, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Mode == ModeRemote {
		return &Validator{Authenticator: intro, guard: guard}, nil
	}
	keys, err := NewKeySource(KeySourceConfig{Client: client, Refresh: cfg.KeySetRefresh, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	revs, err := NewRevocations(RevocationsConfig{
		Client: client, IdleTimeout: cfg.RevocationStaleness, Capacity: cfg.RevocationCapacity, Log: cfg.Log, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	verifier, err := token.NewVerifier(token.VerifierConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, Keys: keys, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	local, err := NewLocal(LocalConfig{
		Verifier: verifier, Keys: keys, Revocations: revs,
		Staleness: cfg.RevocationStaleness, StalePolicy: cfg.StalePolicy, Introspector: intro,
		CacheSize: cfg.TokenCacheSize, Guard: guard, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	return &Validator{Authenticator: local, keys: keys, revs: revs, local: local, guard: guard}, nil
}

// Run keeps the key set and the revocation set fresh until ctx is done
// (local mode; in remote mode it just waits). It returns nil then.
func (v *Validator) Run(ctx context.Context) error {
	if v.local == nil {
		<-ctx.Done()
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return v.keys.Run(ctx) })
	g.Go(func() error { return v.revs.Run(ctx) })
	return g.Wait()
}

// Ready is a readiness check: in local mode, an error until a key set has
// been loaded.
func (v *Validator) Ready(ctx context.Context) error {
	if v.keys == nil {
		return nil
	}
	return v.keys.Ready(ctx)
}

// Keys returns the key source (nil in remote mode).
func (v *Validator) Keys() *KeySource { return v.keys }

// Revocations returns the revocation set (nil in remote mode).
func (v *Validator) Revocations() *Revocations { return v.revs }

// Local returns the local authenticator (nil in remote mode).
func (v *Validator) Local() *Local { return v.local }
