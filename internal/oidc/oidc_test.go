package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/goleak"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/oidc"
	"github.com/tokencart/tokencart/internal/oidc/oidctest"
	"github.com/tokencart/tokencart/internal/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	audience   = "tokencart"
	testTimout = 20 * time.Second
)

// running starts a Set trusting the issuers in ics and waits until each
// has loaded its keys (unless it is expected not to).
func running(t *testing.T, ics []oidc.IssuerConfig, idp *oidctest.Issuer, waitLoaded bool) *oidc.Set {
	t.Helper()
	set, err := oidc.New(oidc.Config{
		Issuers: ics, RootCAs: idp.RootCAs(), UnknownKeyInterval: 200 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if waitLoaded {
		expect.Eventually(t, testTimout, "issuer keys loaded", func() bool {
			for _, i := range set.Issuers() {
				if !i.Loaded() {
					return false
				}
			}
			return true
		})
	}
	return set
}

func trusting(idp *oidctest.Issuer) oidc.IssuerConfig {
	return oidc.IssuerConfig{Issuer: idp.URL(), Audience: audience, AdminClaim: "realm_access.roles", AdminValue: "shop-admin"}
}

// handMade returns a compact JWS with the given header and claims and
// signature bytes, for tokens no library would mint.
func handMade(t *testing.T, header, claims map[string]any, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestAuthenticate: tokens of a trusted issuer are accepted for the
// allowed algorithms, and refused (with the sentinel that says why) for
// every way a token can be wrong.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	idp := oidctest.Start(t)
	set := running(t, []oidc.IssuerConfig{trusting(idp)}, idp, true)
	iss := set.Lookup(idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "x", "aud": audience}))
	if iss == nil {
		t.Fatal("Lookup found no issuer for a token of the trusted issuer")
	}
	now := time.Now()
	good := oidctest.Claims{"sub": "alice", "aud": audience}
	with := func(extra oidctest.Claims) oidctest.Claims {
		c := oidctest.Claims{}
		for k, v := range good {
			c[k] = v
		}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	es := idp.Mint(t, oidctest.KidES256, good)
	tampered := func() string {
		dot := strings.LastIndex(es, ".")
		sig, err := base64.RawURLEncoding.DecodeString(es[dot+1:])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 1
		return es[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
	}()
	hmacKey, err := json.Marshal(jose.JSONWebKey{Key: mustPublic(t, idp), KeyID: oidctest.KidRS256})
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func() string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey}, (&jose.SignerOptions{}).WithHeader("kid", oidctest.KidRS256))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(signer).Claims(map[string]any{"iss": idp.URL(), "sub": "alice", "aud": audience, "exp": now.Add(time.Minute).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}()
	tests := []struct {
		name      string
		raw       string
		wantErr   error
		wantAdmin bool
	}{
		{"ES256", es, nil, false},
		{"RS256", idp.Mint(t, oidctest.KidRS256, good), nil, false},
		{"EdDSA", idp.Mint(t, oidctest.KidEdDSA, good), nil, false},
		{"admin by realm role", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"realm_access": map[string]any{"roles": []string{"x", "shop-admin"}}})), nil, true},
		{"other role is no admin", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"realm_access": map[string]any{"roles": []string{"shop-admin2"}}})), nil, false},
		{"audience among several", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"aud": []string{"other", audience}})), nil, false},
		{"wrong audience", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"aud": "other"})), token.ErrClaims, false},
		{"no audience", idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice"}), token.ErrClaims, false},
		{"wrong issuer", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"iss": idp.URL() + "/"})), token.ErrClaims, false},
		{"expired", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"exp": now.Add(-time.Hour).Unix()})), token.ErrExpired, false},
		{"not yet valid", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"nbf": now.Add(time.Hour).Unix()})), token.ErrNotYetValid, false},
		{"lifetime too long", idp.Mint(t, oidctest.KidES256, with(oidctest.Claims{"exp": now.Add(3 * time.Hour).Unix()})), token.ErrClaims, false},
		{"no sub", idp.Mint(t, oidctest.KidES256, oidctest.Claims{"aud": audience}), token.ErrClaims, false},
		{"RSA-1024 key", idp.Mint(t, oidctest.KidRSA1024, good), token.ErrUnknownKey, false},
		{"unknown kid", handMade(t, map[string]any{"alg": "ES256", "kid": "nope"}, map[string]any{"iss": idp.URL()}, []byte("sig")), token.ErrUnknownKey, false},
		{"tampered signature", tampered, token.ErrSignature, false},
		{"alg none", handMade(t, map[string]any{"alg": "none", "kid": oidctest.KidES256}, map[string]any{"iss": idp.URL(), "sub": "alice", "aud": audience, "exp": now.Add(time.Minute).Unix()}, nil), token.ErrMalformed, false},
		{"HS256 keyed by the public key", hs256, token.ErrMalformed, false},
		{"ES256 header on the RSA key", handMade(t, map[string]any{"alg": "ES256", "kid": oidctest.KidRS256}, map[string]any{"iss": idp.URL()}, []byte("sig")), token.ErrSignature, false},
		{"jku header", handMade(t, map[string]any{"alg": "ES256", "kid": oidctest.KidES256, "jku": "https://evil.example/jwks"}, map[string]any{"iss": idp.URL()}, []byte("sig")), token.ErrMalformed, false},
		{"typ of an ID-token-like other kind", handMade(t, map[string]any{"alg": "ES256", "kid": oidctest.KidES256, "typ": "dpop+jwt"}, map[string]any{"iss": idp.URL()}, []byte("sig")), token.ErrMalformed, false},
		{"line break in a segment", es[:10] + "\n" + es[10:], token.ErrMalformed, false},
		{"too large", es + strings.Repeat("A", token.MaxSize), token.ErrTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, until, err := iss.Authenticate(context.Background(), tt.raw)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Authenticate: got %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got, want := c.Subject, oidc.Owner(idp.URL(), "alice"); got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			if c.HasRole(token.RoleAdmin) != tt.wantAdmin {
				t.Errorf("roles %v: admin = %v, want %v", c.Roles, !tt.wantAdmin, tt.wantAdmin)
			}
			if !until.Equal(c.Expiry) {
				t.Errorf("reuse until %v, want exp %v (no introspection)", until, c.Expiry)
			}
		})
	}
}

func mustPublic(t *testing.T, idp *oidctest.Issuer) any {
	t.Helper()
	return idp.PublicKey(oidctest.KidRS256)
}

// TestOwnerNamespaced: the same sub at two issuers (and at authsvc, whose
// subjects are bare ids) names three different owners.
func TestOwnerNamespaced(t *testing.T) {
	t.Parallel()
	a, b := oidctest.Start(t), oidctest.Start(t)
	set, err := oidc.New(oidc.Config{Issuers: []oidc.IssuerConfig{trusting(a), trusting(b)}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	owners := map[string]string{"authsvc": "alice"}
	for name, idp := range map[string]*oidctest.Issuer{"a": a, "b": b} {
		owners[name] = oidc.Owner(idp.URL(), "alice")
		if got := set.Lookup(idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice"})); got == nil || got.Name() != idp.URL() {
			t.Errorf("Lookup routed issuer %s's token to %v", name, got)
		}
	}
	seen := map[string]string{}
	for name, o := range owners {
		if other, dup := seen[o]; dup {
			t.Errorf("%s and %s share owner %q", name, other, o)
		}
		seen[o] = name
	}
}

// TestUnknownKidRefetch: a kid missing from the key set triggers one
// refetch, rate-limited however many tokens ask, and a key published since
// is found by it.
func TestUnknownKidRefetch(t *testing.T) {
	t.Parallel()
	idp := oidctest.Start(t)
	idp.Withhold(oidctest.KidES256, true)
	set := running(t, []oidc.IssuerConfig{trusting(idp)}, idp, true)
	iss := set.Issuers()[0]
	raw := idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice", "aud": audience})
	_, before, _ := idp.Calls()
	if _, _, err := iss.Authenticate(context.Background(), raw); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("withheld key: got %v, want ErrUnknownKey", err)
	}
	for range 20 {
		_, _, _ = iss.Authenticate(context.Background(), raw)
	}
	if _, after, _ := idp.Calls(); after-before < 1 || after-before > 2 {
		t.Errorf("21 tokens with an unknown kid within the interval made %d JWKS fetches, want 1 (2 with a periodic one)", after-before)
	}
	idp.Withhold(oidctest.KidES256, false)
	expect.Eventually(t, testTimout, "key found by a refetch", func() bool {
		_, _, err := iss.Authenticate(context.Background(), raw)
		return err == nil
	})
}

// TestDiscoveryChecked: a discovery document naming another issuer (here
// the configured issuer with a trailing slash) loads no keys, and the
// issuer's tokens are refused as Unavailable, not accepted.
func TestDiscoveryChecked(t *testing.T) {
	t.Parallel()
	idp := oidctest.Start(t)
	ic := trusting(idp)
	ic.Issuer += "/"
	set := running(t, []oidc.IssuerConfig{ic}, idp, false)
	iss := set.Issuers()[0]
	expect.Eventually(t, testTimout, "a failed fetch", func() bool { _, failed := iss.Fetches(); return failed > 0 })
	raw := idp.Mint(t, oidctest.KidES256, oidctest.Claims{"iss": ic.Issuer, "sub": "alice", "aud": audience})
	if _, _, err := iss.Authenticate(context.Background(), raw); !errors.Is(err, oidc.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
	if iss.Loaded() {
		t.Error("keys loaded from a discovery document naming another issuer")
	}
}

// TestIntrospection: with introspection configured, an active token is
// accepted for the cache TTL, a deactivated one is ErrInactive, and a
// wrong client secret is ErrUnavailable (the token may be good).
func TestIntrospection(t *testing.T) {
	t.Parallel()
	idp := oidctest.Start(t)
	dir := t.TempDir()
	secretFile := func(name, secret string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := trusting(idp), trusting(idp)
	good.Introspection = &oidc.IntrospectionConfig{ClientID: oidctest.ClientID, ClientSecretFile: secretFile("good", oidctest.ClientSecret), CacheTTL: oidc.Duration(time.Second)}
	bad.Introspection = &oidc.IntrospectionConfig{ClientID: oidctest.ClientID, ClientSecretFile: secretFile("bad", "wrong")}
	for _, tt := range []struct {
		name       string
		ic         oidc.IssuerConfig
		deactivate bool
		want       error
	}{
		{"active", good, false, nil},
		{"deactivated", good, true, oidc.ErrInactive},
		{"wrong client secret", bad, false, oidc.ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			iss := running(t, []oidc.IssuerConfig{tt.ic}, idp, true).Issuers()[0]
			raw := idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice", "aud": audience, "jti": tt.name})
			if tt.deactivate {
				idp.Deactivate(tt.name)
			}
			_, _, before := idp.Calls()
			start := time.Now()
			_, until, err := iss.Authenticate(context.Background(), raw)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if _, _, after := idp.Calls(); after != before+1 {
				t.Errorf("%d introspection calls, want 1", after-before)
			}
			if err == nil && (until.Before(start) || until.After(time.Now().Add(time.Second))) {
				t.Errorf("reuse until %v: want within the 1s cache TTL", until)
			}
		})
	}
}

// TestReadFile: the trusted-issuers file is checked, each mistake named.
func TestReadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc, wantErr string
	}{
		{"good", `{"issuers":[{"issuer":"https://id.example/realms/shop","audience":"tokencart","admin_claim":"roles","admin_value":"admin",
			"max_token_lifetime":"15m","introspection":{"client_id":"c","client_secret_file":"` + secret + `"}}]}`, ""},
		{"plain http", `{"issuers":[{"issuer":"http://id.example","audience":"a"}]}`, "https"},
		{"no audience", `{"issuers":[{"issuer":"https://id.example"}]}`, "audience"},
		{"admin claim alone", `{"issuers":[{"issuer":"https://id.example","audience":"a","admin_claim":"roles"}]}`, "admin_value"},
		{"misspelt field", `{"issuers":[{"issuer":"https://id.example","audiense":"a"}]}`, "audiense"},
		{"twice", `{"issuers":[{"issuer":"https://id.example","audience":"a"},{"issuer":"https://id.example","audience":"b"}]}`, "twice"},
		{"no issuers", `{"issuers":[]}`, "issuers"},
		{"bad duration", `{"issuers":[{"issuer":"https://id.example","audience":"a","max_token_lifetime":"soon"}]}`, "duration"},
		{"missing secret file", `{"issuers":[{"issuer":"https://id.example","audience":"a","introspection":{"client_id":"c","client_secret_file":"/nonexistent"}}]}`, "client_secret_file"},
		{"query in issuer", `{"issuers":[{"issuer":"https://id.example/?x=1","audience":"a"}]}`, "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if err := os.WriteFile(p, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := oidc.ReadFile(p)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ReadFile: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ReadFile: got %v, want an error naming %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("error %v shows the client secret", err)
			}
		})
	}
}
