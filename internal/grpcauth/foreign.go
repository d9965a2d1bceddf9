package grpcauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/oidc"
	"github.com/tokencart/tokencart/internal/tlsconfig"
	"github.com/tokencart/tokencart/internal/token"
)

// issuerRouter sends each token to the check of its issuer: the tokens
// that name a trusted foreign issuer to foreign, every other token to
// authsvc's check (which refuses an issuer it does not know). Only the
// configured issuers are ever fetched, so the iss of a token cannot make
// the service call a URL of the sender's choosing.
type issuerRouter struct {
	authsvc Authenticator
	foreign *foreignAuthenticator
}

// Authenticate implements Authenticator.
func (r issuerRouter) Authenticate(ctx context.Context, raw string) (token.Claims, error) {
	if iss := r.foreign.issuers.Lookup(raw); iss != nil {
		return r.foreign.authenticate(ctx, raw, iss)
	}
	return r.authsvc.Authenticate(ctx, raw)
}

// foreignAuthenticator checks the tokens of trusted foreign issuers: a
// bounded cache of verified tokens (reused until exp, or for the
// introspection cache TTL), the Guard before any signature check or
// introspection, then the issuer's own check.
type foreignAuthenticator struct {
	issuers *oidc.Set
	cache   *tokenCache
	guard   *Guard
	log     *slog.Logger
	now     func() time.Time
}

func (f *foreignAuthenticator) authenticate(ctx context.Context, raw string, iss *oidc.Issuer) (token.Claims, error) {
	now := f.now()
	k := keyOf(raw)
	if c, ok := f.cache.get(k, now); ok {
		return c, nil
	}
	attempt, err := f.guard.check(ctx, k)
	if err != nil {
		return token.Claims{}, err
	}
	c, until, err := iss.Authenticate(ctx, raw)
	switch {
	case errors.Is(err, oidc.ErrUnavailable):
		if ctx.Err() != nil {
			return token.Claims{}, status.FromContextError(ctx.Err()).Err()
		}
		// Debug: while an issuer is down this happens on every call; the
		// key-set fetch failures are logged once by the refresh loop.
		f.log.DebugContext(ctx, "cannot check a token of a trusted issuer", "issuer", iss.Name(), "error", err)
		return token.Claims{}, errAuthUnavailable
	case err != nil:
		attempt.Failed(err)
		return token.Claims{}, err
	}
	f.cache.put(k, c, until, now)
	return c, nil
}

// trustedIssuers reads the --trusted-issuers file and the
// --trusted-issuers-ca bundle; nil issuers when no file is configured.
func (c Config) trustedIssuers() ([]oidc.IssuerConfig, *x509.CertPool, error) {
	if c.TrustedIssuers == "" {
		if c.TrustedIssuersCA != "" {
			return nil, nil, errors.New("--trusted-issuers-ca needs --trusted-issuers")
		}
		return nil, nil, nil
	}
	ics, err := oidc.ReadFile(c.TrustedIssuers)
	if err != nil {
		return nil, nil, fmt.Errorf("--trusted-issuers: %w", err)
	}
	for _, ic := range ics {
		if ic.Issuer == c.Issuer {
			return nil, nil, fmt.Errorf("--trusted-issuers: %q is authsvc's --issuer; authsvc's tokens are checked against its own keys and revocations", ic.Issuer)
		}
	}
	var roots *x509.CertPool
	if c.TrustedIssuersCA != "" {
		if roots, err = tlsconfig.LoadPool(c.TrustedIssuersCA); err != nil {
			return nil, nil, fmt.Errorf("--trusted-issuers-ca: %w", err)
		}
	}
	return ics, roots, nil
}

// newForeign returns the authenticator of cfg's trusted issuers, nil if
// there are none.
func newForeign(cfg Config, guard *Guard) (*foreignAuthenticator, error) {
	ics, roots, err := cfg.trustedIssuers()
	if err != nil || ics == nil {
		return nil, err
	}
	set, err := oidc.New(oidc.Config{Issuers: ics, RootCAs: roots, Leeway: cfg.Leeway, Log: cfg.Log, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return &foreignAuthenticator{issuers: set, cache: newTokenCache(cfg.TokenCacheSize), guard: guard, log: cfg.Log, now: cfg.Now}, nil
}
