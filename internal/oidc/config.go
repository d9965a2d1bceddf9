package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of an IssuerConfig.
const (
	// DefaultMaxTokenLifetime bounds how far in the future a foreign token's
	// exp may lie. No push revocation reaches this service from a foreign
	// issuer, so a token's remaining lifetime is how long a revoked token
	// may still be accepted (unless introspection is configured).
	DefaultMaxTokenLifetime = time.Hour
	// DefaultRefresh is the period of discovery and JWKS refetches.
	DefaultRefresh = 5 * time.Minute
	// DefaultUnknownKeyInterval is the least time between two refetches
	// triggered by tokens naming an unknown kid.
	DefaultUnknownKeyInterval = 5 * time.Second
	// DefaultIntrospectCacheTTL is how long an "active" introspection answer
	// is reused: it bounds how late a revocation at the issuer is noticed.
	DefaultIntrospectCacheTTL = 10 * time.Second
	// maxFileSize bounds the trusted-issuers file.
	maxFileSize = 1 << 20
	// maxIssuers bounds the issuers of one file.
	maxIssuers = 32
)

// Duration is a time.Duration written as a Go duration string ("15m").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"15m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// File is the trusted-issuers file: a JSON document
//
//	{"issuers": [IssuerConfig, ...]}
//
// Unknown fields are errors, so a misspelt setting does not pass silently.
type File struct {
	Issuers []IssuerConfig `json:"issuers"`
}

// IssuerConfig is one trusted OpenID Connect issuer.
type IssuerConfig struct {
	// Issuer is the issuer's URL, exactly as its tokens' iss and its
	// discovery document's issuer say it (https, no query or fragment).
	// Its discovery document is {Issuer}/.well-known/openid-configuration.
	Issuer string `json:"issuer"`
	// Audience must be one of a token's aud values.
	Audience string `json:"audience"`
	// AdminClaim, a dotted path into the token's claims ("roles",
	// "realm_access.roles", "groups", "scope"), grants the admin role when
	// it holds AdminValue: a string equal to it or listing it among
	// space-separated words, or an array holding it. Empty: no token of
	// this issuer is an admin.
	AdminClaim string `json:"admin_claim,omitempty"`
	AdminValue string `json:"admin_value,omitempty"`
	// MaxTokenLifetime refuses tokens whose exp lies further ahead;
	// zero means DefaultMaxTokenLifetime.
	MaxTokenLifetime Duration `json:"max_token_lifetime,omitempty"`
	// Refresh is the period of discovery and JWKS refetches; zero means
	// DefaultRefresh.
	Refresh Duration `json:"jwks_refresh,omitempty"`
	// Introspection, if set, asks the issuer (RFC 7662) whether each
	// token is still active.
	Introspection *IntrospectionConfig `json:"introspection,omitempty"`
}

// IntrospectionConfig is how this service introspects an issuer's tokens.
type IntrospectionConfig struct {
	// Endpoint is the https introspection URL; empty means the discovery
	// document's introspection_endpoint.
	Endpoint string `json:"endpoint,omitempty"`
	// ClientID and the secret in ClientSecretFile authenticate this
	// service to the endpoint (client_secret_basic).
	ClientID         string `json:"client_id"`
	ClientSecretFile string `json:"client_secret_file"`
	// CacheTTL is how long an active answer is reused; zero means
	// DefaultIntrospectCacheTTL.
	CacheTTL Duration `json:"cache_ttl,omitempty"`

	secret string // read from ClientSecretFile by ReadFile
}

// ReadFile reads and checks a trusted-issuers file, and the client secrets
// it names. Its errors name the issuer and field to fix, never a secret.
func ReadFile(path string) ([]IssuerConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Issuers) == 0 || len(f.Issuers) > maxIssuers {
		return nil, fmt.Errorf("%s: want 1 to %d issuers, got %d", path, maxIssuers, len(f.Issuers))
	}
	seen := map[string]bool{}
	var errs []error
	for n, ic := range f.Issuers {
		if seen[ic.Issuer] {
			errs = append(errs, fmt.Errorf("issuer %q is listed twice", ic.Issuer))
		}
		seen[ic.Issuer] = true
		if err := f.Issuers[n].check(); err != nil {
			errs = append(errs, fmt.Errorf("issuer %d (%q): %w", n+1, ic.Issuer, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Issuers, nil
}

// check validates c and fills in its defaults and secret.
func (c *IssuerConfig) check() error {
	var errs []error
	if err := checkHTTPS(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if (c.AdminClaim == "") != (c.AdminValue == "") {
		errs = append(errs, errors.New("admin_claim and admin_value go together"))
	}
	if c.MaxTokenLifetime < 0 || c.Refresh < 0 {
		errs = append(errs, errors.New("max_token_lifetime and jwks_refresh must not be negative"))
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = Duration(DefaultMaxTokenLifetime)
	}
	if c.Refresh == 0 {
		c.Refresh = Duration(DefaultRefresh)
	}
	if in := c.Introspection; in != nil {
		if in.Endpoint != "" {
			if err := checkHTTPS(in.Endpoint); err != nil {
				errs = append(errs, fmt.Errorf("introspection.endpoint: %w", err))
			}
		}
		if in.CacheTTL < 0 {
			errs = append(errs, errors.New("introspection.cache_ttl must not be negative"))
		}
		if in.CacheTTL == 0 {
			in.CacheTTL = Duration(DefaultIntrospectCacheTTL)
		}
		switch secret, err := os.ReadFile(in.ClientSecretFile); {
		case in.ClientID == "" || in.ClientSecretFile == "":
			errs = append(errs, errors.New("introspection needs client_id and client_secret_file"))
		case err != nil:
			errs = append(errs, fmt.Errorf("introspection.client_secret_file: %w", err))
		default:
			in.secret = strings.TrimSpace(string(secret))
			if in.secret == "" {
				errs = append(errs, errors.New("introspection.client_secret_file is empty"))
			}
		}
	}
	return errors.Join(errs...)
}

// checkHTTPS reports whether s is an absolute https URL with a host and no
// query, fragment or user info.
func checkHTTPS(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q is not an https URL", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(s, "#") || strings.HasSuffix(s, "?"):
		return fmt.Errorf("%q must not carry a query, fragment or user info", s)
	}
	return nil
}
