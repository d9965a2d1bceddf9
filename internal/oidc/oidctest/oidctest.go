// Package oidctest serves a fake OpenID Connect issuer over HTTPS for
// tests: discovery, a JWKS with EdDSA, ES256, RS256 (2048) and RS256 (1024,
// which must be refused) keys, and an RFC 7662 introspection endpoint.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key ids of the issuer's keys.
const (
	KidEdDSA   = "ed"
	KidES256   = "es"
	KidRS256   = "rs"
	KidRSA1024 = "rs1024"
)

// Introspection client credentials the issuer accepts.
const (
	ClientID     = "catalogsvc"
	ClientSecret = "introspection secret"
)

// Issuer is a running fake issuer.
type Issuer struct {
	srv  *httptest.Server
	keys map[string]signingKey

	discoveries, jwksFetches, introspections atomic.Int64

	mu       sync.Mutex      // guards the fields below
	inactive map[string]bool // jti the introspection endpoint calls inactive
	withheld map[string]bool // kids left out of the JWKS
}

type signingKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
}

// Start runs an issuer until the test ends.
func Start(tb testing.TB) *Issuer {
	tb.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	//nolint:gosec // a weak key on purpose: the verifier must refuse it.
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	i := &Issuer{
		keys: map[string]signingKey{
			KidEdDSA: {ed, jose.EdDSA}, KidES256: {ec, jose.ES256},
			KidRS256: {rs, jose.RS256}, KidRSA1024: {weak, jose.RS256},
		},
		inactive: map[string]bool{}, withheld: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.discovery)
	mux.HandleFunc("GET /jwks", i.jwks)
	mux.HandleFunc("POST /introspect", i.introspect)
	i.srv = httptest.NewTLSServer(mux)
	tb.Cleanup(i.srv.Close)
	return i
}

// URL is the issuer (its iss).
func (i *Issuer) URL() string { return i.srv.URL }

// RootCAs trust the issuer's certificate.
func (i *Issuer) RootCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(i.srv.Certificate())
	return p
}

// Calls returns how many discovery, JWKS and introspection requests the
// issuer has served.
func (i *Issuer) Calls() (discoveries, jwks, introspections int64) {
	return i.discoveries.Load(), i.jwksFetches.Load(), i.introspections.Load()
}

// Withhold leaves kid out of the JWKS (or puts it back).
func (i *Issuer) Withhold(kid string, withheld bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.withheld[kid] = withheld
}

// Deactivate makes introspection call the token with jti inactive.
func (i *Issuer) Deactivate(jti string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.inactive[jti] = true
}

// Claims are a token's claims; Mint fills in iss, exp, iat and jti when
// absent.
type Claims map[string]any

// Mint signs claims with the key kid.
func (i *Issuer) Mint(tb testing.TB, kid string, claims Claims) string {
	tb.Helper()
	k := i.keys[kid]
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		tb.Fatal(err)
	}
	c := maps.Clone(claims)
	now := time.Now()
	defaults := Claims{"iss": i.URL(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text()}
	for name, v := range defaults {
		if _, ok := c[name]; !ok {
			c[name] = v
		}
	}
	raw, err := jwt.Signed(signer).Claims(map[string]any(c)).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func (i *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	i.discoveries.Add(1)
	writeJSON(w, map[string]any{
		"issuer": i.URL(), "jwks_uri": i.URL() + "/jwks", "introspection_endpoint": i.URL() + "/introspect",
		"id_token_signing_alg_values_supported": []string{"EdDSA", "ES256", "RS256"},
	})
}

func (i *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	i.jwksFetches.Add(1)
	i.mu.Lock()
	defer i.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for kid, k := range i.keys {
		if !i.withheld[kid] {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"})
		}
	}
	writeJSON(w, set)
}

func (i *Issuer) introspect(w http.ResponseWriter, r *http.Request) {
	i.introspections.Add(1)
	id, secret, ok := r.BasicAuth()
	// RFC 6749, section 2.3.1: both parts are form-encoded.
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != ClientID || secret != ClientSecret {
		http.Error(w, "client authentication failed", http.StatusUnauthorized)
		return
	}
	tok, err := jwt.ParseSigned(r.PostFormValue("token"), []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
	var c jwt.Claims
	if err == nil {
		err = tok.UnsafeClaimsWithoutVerification(&c)
	}
	i.mu.Lock()
	active := err == nil && !i.inactive[c.ID]
	i.mu.Unlock()
	if !active {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	writeJSON(w, map[string]any{"active": true, "iss": c.Issuer, "sub": c.Subject})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// PublicKey returns the public key with id kid.
func (i *Issuer) PublicKey(kid string) crypto.PublicKey { return i.keys[kid].priv.Public() }

// CAFile writes the issuer's certificate, PEM, to a file of the test's and
// returns its path (for --trusted-issuers-ca).
func (i *Issuer) CAFile(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "issuer-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.srv.Certificate().Raw})
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// ConfigFile writes a trusted-issuers file (oidc.ReadFile) for issuers,
// each with audience and the admin mapping realm_access.roles holding
// adminRole, and returns its path.
func ConfigFile(tb testing.TB, audience, adminRole string, issuers ...string) string {
	tb.Helper()
	var list []map[string]any
	for _, iss := range issuers {
		list = append(list, map[string]any{"issuer": iss, "audience": audience, "admin_claim": "realm_access.roles", "admin_value": adminRole})
	}
	data, err := json.Marshal(map[string]any{"issuers": list})
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), "trusted-issuers.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
