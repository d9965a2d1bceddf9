package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tokencart/tokencart/internal/refresh"
	"github.com/tokencart/tokencart/internal/token"
)

// Errors of an Issuer beside token's sentinels, for errors.Is.
var (
	// ErrUnavailable: the issuer cannot be asked now (no key set loaded
	// yet, introspection endpoint unreachable); the token may be good.
	ErrUnavailable = errors.New("oidc: issuer unavailable")
	// ErrInactive: the issuer's introspection endpoint says the token is
	// not active (revoked, or unknown to it).
	ErrInactive = errors.New("oidc: token not active")
)

// Issuer checks the tokens of one trusted issuer: its keys come from its
// discovery document's jwks_uri, refreshed in the background by Run.
type Issuer struct {
	cfg    IssuerConfig
	leeway time.Duration
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time
	loop   *refresh.Loop
	// ownerPrefix namespaces the issuer's subjects (Owner).
	ownerPrefix string

	keys          atomic.Pointer[keySet]
	introspectURL atomic.Pointer[string] // configured, or from discovery
}

// newIssuer returns an Issuer with no keys yet.
func newIssuer(cfg IssuerConfig, set Config, c *http.Client) (*Issuer, error) {
	i := &Issuer{
		cfg: cfg, leeway: set.Leeway, http: c, now: set.Now,
		log:         set.Log.With("issuer", cfg.Issuer),
		ownerPrefix: ownerPrefix(cfg.Issuer),
	}
	if in := cfg.Introspection; in != nil && in.Endpoint != "" {
		i.introspectURL.Store(&in.Endpoint)
	}
	loop, err := refresh.New(refresh.Config{
		Fetch: i.fetch, Period: time.Duration(cfg.Refresh), DemandInterval: set.UnknownKeyInterval,
		MaxBackoff: 30 * time.Second, What: "issuer key set", Log: i.log,
	})
	if err != nil {
		return nil, err
	}
	i.loop = loop
	return i, nil
}

// Name returns the issuer's URL.
func (i *Issuer) Name() string { return i.cfg.Issuer }

// Loaded reports whether a key set has been fetched.
func (i *Issuer) Loaded() bool { return i.keys.Load() != nil }

// Fetches returns how many discovery-and-JWKS fetches were attempted and
// how many failed.
func (i *Issuer) Fetches() (attempted, failed int64) { return i.loop.Fetches() }

// Run keeps the key set fresh until ctx is done.
func (i *Issuer) Run(ctx context.Context) error { return i.loop.Run(ctx) }

// fetch reads the discovery document, then the JWKS it names.
func (i *Issuer) fetch(ctx context.Context) error {
	d, err := discover(ctx, i.http, i.cfg.Issuer)
	if err != nil {
		return err
	}
	body, err := get(ctx, i.http, d.JWKSURI, token.MaxKeySetSize)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	set, err := parseKeySet(body)
	if err != nil {
		return err
	}
	if in := i.cfg.Introspection; in != nil && in.Endpoint == "" {
		if d.IntrospectionEndpoint == "" {
			return errors.New("discovery: no introspection_endpoint, and introspection is configured without an endpoint")
		}
		i.introspectURL.Store(&d.IntrospectionEndpoint)
	}
	old := i.keys.Swap(set)
	if old == nil || len(old.keys) != len(set.keys) || old.skipped != set.skipped {
		i.log.InfoContext(ctx, "issuer key set loaded", "keys", len(set.keys), "skipped", set.skipped)
	}
	return nil
}

// Authenticate checks raw (see Verify) and, if introspection is
// configured, asks the issuer whether it is still active. It returns the
// claims and how long the answer may be reused: until exp, or for the
// introspection cache TTL.
func (i *Issuer) Authenticate(ctx context.Context, raw string) (token.Claims, time.Time, error) {
	c, sub, err := i.verify(ctx, raw)
	if err != nil {
		return token.Claims{}, time.Time{}, err
	}
	until := c.Expiry
	if in := i.cfg.Introspection; in != nil {
		if err := i.introspect(ctx, raw, sub); err != nil {
			return token.Claims{}, time.Time{}, err
		}
		until = minTime(until, i.now().Add(time.Duration(in.CacheTTL)))
	}
	return c, until, nil
}

// Owner returns the cart owner of subject sub at issuer: the subject,
// namespaced by a digest of the issuer so that the users of two issuers
// never share a cart. authsvc's subjects are random base64url ids, which
// never start with "oidc:".
func Owner(issuer, sub string) string {
	return ownerPrefix(issuer) + sub
}

func ownerPrefix(issuer string) string {
	h := sha256.Sum256([]byte(issuer))
	return "oidc:" + base64.RawURLEncoding.EncodeToString(h[:16]) + ":"
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
