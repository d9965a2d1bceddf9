// Package oidc checks access tokens of OpenID Connect issuers other than
// authsvc that a service is configured to trust (ReadFile): each issuer's
// keys come from its discovery document's jwks_uri over HTTPS, refreshed
// periodically and, rate-limited, when a token names an unknown kid; its
// tokens must be signed with EdDSA, ES256 or RS256 (RSA of at least
// MinRSABits), carry its exact iss, the configured audience and a current
// exp no further ahead than the configured lifetime; their subject becomes
// an owner namespaced by issuer (Owner), and a configured claim maps to the
// admin role. Revocation at a foreign issuer is noticed only through the
// token's short lifetime or, if configured, RFC 7662 introspection.
//
// Only configured issuers are ever fetched: a token naming another issuer
// costs nothing but its parsing.
package oidc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tokencart/tokencart/internal/token"
)

// Config configures a Set.
type Config struct {
	// Issuers are the trusted issuers (ReadFile). Required.
	Issuers []IssuerConfig
	// RootCAs verify the issuers' HTTPS certificates; nil means the
	// system's roots.
	RootCAs *x509.CertPool
	// Leeway is the clock skew tolerated on exp, nbf and iat; zero means
	// token.DefaultLeeway.
	Leeway time.Duration
	// UnknownKeyInterval is the least time between two refetches of an
	// issuer's keys triggered by tokens naming an unknown kid; zero means
	// DefaultUnknownKeyInterval.
	UnknownKeyInterval time.Duration
	// Log receives key-set events. Required.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Set is the trusted issuers, by issuer URL.
type Set struct {
	byName map[string]*Issuer
	list   []*Issuer
	http   *http.Client
}

// New returns a Set for cfg; Run loads the issuers' keys.
func New(cfg Config) (*Set, error) {
	switch {
	case len(cfg.Issuers) == 0 || cfg.Log == nil:
		return nil, errors.New("oidc: Issuers and Log are required")
	case cfg.Leeway < 0 || cfg.Leeway > token.MaxLeeway:
		return nil, errors.New("oidc: leeway out of range")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = token.DefaultLeeway
	}
	if cfg.UnknownKeyInterval <= 0 {
		cfg.UnknownKeyInterval = DefaultUnknownKeyInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Set{byName: map[string]*Issuer{}, http: newHTTPClient(cfg.RootCAs)}
	for _, ic := range cfg.Issuers {
		if _, dup := s.byName[ic.Issuer]; dup {
			return nil, errors.New("oidc: issuer " + ic.Issuer + " listed twice")
		}
		if err := ic.check(); err != nil { // fills in the defaults and secret
			return nil, fmt.Errorf("oidc: issuer %q: %w", ic.Issuer, err)
		}
		i, err := newIssuer(ic, cfg, s.http)
		if err != nil {
			return nil, err
		}
		s.byName[ic.Issuer] = i
		s.list = append(s.list, i)
	}
	return s, nil
}

// Lookup returns the trusted issuer that raw claims to come from, without
// verifying anything: nil if raw names none of them.
func (s *Set) Lookup(raw string) *Issuer {
	if s == nil {
		return nil
	}
	return s.byName[IssuerOf(raw)]
}

// Issuers returns the trusted issuers.
func (s *Set) Issuers() []*Issuer { return s.list }

// Run keeps every issuer's key set fresh until ctx is done, then closes
// idle connections.
func (s *Set) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, i := range s.list {
		g.Go(func() error { return i.Run(ctx) })
	}
	err := g.Wait()
	s.Close()
	return err
}

// Close releases idle connections to the issuers.
func (s *Set) Close() {
	s.http.CloseIdleConnections()
}
