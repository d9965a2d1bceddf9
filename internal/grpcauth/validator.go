package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// Validator is a service's whole token check, built from Config: in local
// mode a key source, a revocation feed and a local authenticator (with an
// introspector for the stale fallback); in remote mode an introspector.
// It implements Authenticator; Run keeps its background state fresh.
type Validator struct {
	Authenticator
	keys    *keySource
	revs    *revocationFeed
	local   *localAuthenticator
	intro   *introspector
	guard   *Guard
	foreign *foreignAuthenticator // nil without trusted issuers
	conn    *grpc.ClientConn      // Dial's, closed by Close; nil from newValidator
}

// Dial connects to authsvc at cfg.Addr (lazily: the first call, or Run,
// opens the connection) and returns a Validator that uses it, logging to
// cfg.Log or else to log. Close releases the connection.
func Dial(cfg Config, log *slog.Logger) (*Validator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = log.With("component", "grpcauth")
	}
	creds, err := cfg.transportCredentials()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Back within seconds of authsvc, however long it was away.
		grpc.WithConnectParams(client.ConnectParams),
		// A silently dead link to authsvc (no FIN, no RST) is dropped
		// within seconds, and the revocation feed resumes on a new one.
		grpc.WithKeepaliveParams(client.Keepalive),
	}
	if cred := strings.TrimSpace(cfg.ServiceCredential); cred != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(ServiceCredential(cred)))
	}
	conn, err := grpc.NewClient(cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("authsvc client: %w", err)
	}
	v, err := newValidator(conn, cfg)
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	v.conn = conn
	return v, nil
}

// Close releases the connection Dial opened.
func (v *Validator) Close() error {
	if v.foreign != nil {
		v.foreign.issuers.Close()
	}
	if v.conn == nil {
		return nil
	}
	return v.conn.Close()
}

// newValidator returns a Validator that reaches authsvc over conn; cfg's
// connection settings are not used.
func newValidator(conn grpc.ClientConnInterface, cfg Config) (*Validator, error) {
	if err := cfg.validateChecks(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		return nil, errors.New("validator: Log is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	auth := authv1.NewAuthServiceClient(conn)
	guard, err := NewGuard(cfg.Guard)
	if err != nil {
		return nil, err
	}
	intro, err := newIntrospector(introspectorConfig{
		Client: auth, Issuer: cfg.Issuer, Audience: cfg.Audience,
		CacheTTL: cfg.IntrospectCacheTTL, CacheSize: introspectCacheSize, Guard: guard, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	foreign, err := newForeign(cfg, guard)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == ModeRemote {
		return withForeign(&Validator{Authenticator: intro, intro: intro, guard: guard}, foreign), nil
	}
	keys, err := newKeySource(keySourceConfig{Client: auth, Refresh: cfg.KeySetRefresh, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	revs, err := newRevocationFeed(revocationFeedConfig{
		Client: auth, IdleTimeout: cfg.RevocationStaleness, Capacity: cfg.RevocationCapacity, Log: cfg.Log, Now: cfg.Now,
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
	local, err := newLocalAuthenticator(localConfig{
		Verifier: verifier, Keys: keys, Revocations: revs,
		Staleness: cfg.RevocationStaleness, StalePolicy: cfg.StalePolicy, Introspector: intro,
		CacheSize: cfg.TokenCacheSize, Guard: guard, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	return withForeign(&Validator{Authenticator: local, keys: keys, revs: revs, local: local, intro: intro, guard: guard}, foreign), nil
}

// withForeign routes the tokens of trusted foreign issuers away from v's
// authsvc check, if there are any.
func withForeign(v *Validator, foreign *foreignAuthenticator) *Validator {
	if foreign != nil {
		v.foreign = foreign
		v.Authenticator = issuerRouter{authsvc: v.Authenticator, foreign: foreign}
	}
	return v
}

// Run keeps the key set and the revocation set fresh (local mode), and the
// trusted issuers' key sets, until ctx is done. It returns nil then.
func (v *Validator) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if v.local != nil {
		g.Go(func() error { return v.keys.Run(ctx) })
		g.Go(func() error { return v.revs.Run(ctx) })
	}
	if v.foreign != nil {
		g.Go(func() error { return v.foreign.issuers.Run(ctx) })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
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
