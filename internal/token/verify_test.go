package token_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

const (
	testIssuer   = "https://auth.tokencart.test"
	testAudience = "tokencart"
)

var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) token.SigningKey {
	t.Helper()
	k, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func validClaims() token.Claims {
	return token.Claims{
		Issuer:   testIssuer,
		Subject:  "user-1",
		Audience: []string{testAudience},
		Roles:    []string{token.RoleCustomer},
		TokenID:  token.NewID(),
		ClientID: "tokencart",
		IssuedAt: testNow.Add(-time.Minute),
		Expiry:   testNow.Add(time.Hour),
	}
}

func newVerifier(t testing.TB, keys ...token.SigningKey) *token.Verifier {
	t.Helper()
	pubs := map[string]ed25519.PublicKey{}
	for _, k := range keys {
		pubs[k.ID] = k.Public()
	}
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer:   testIssuer,
		Audience: testAudience,
		Leeway:   30 * time.Second,
		Keys:     token.NewKeySet(pubs),
		Now:      func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func b64(v any) string {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// craft signs an arbitrary header and payload with key, bypassing Sign's
// checks, to build tokens an attacker could build.
func craft(key ed25519.PrivateKey, hdr, payload any) string {
	input := b64(hdr) + "." + b64(payload)
	return input + "." + b64(ed25519.Sign(key, []byte(input)))
}

func payload(c token.Claims) map[string]any {
	return map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "aud": c.Audience, "roles": c.Roles, "jti": c.TokenID, "client_id": c.ClientID,
		"iat": c.IssuedAt.Unix(), "nbf": c.IssuedAt.Unix(), "exp": c.Expiry.Unix(),
	}
}

func TestVerifyAcceptsSignedToken(t *testing.T) {
	key := newKey(t)
	c := validClaims()
	raw, err := token.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newVerifier(t, key).Verify(raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Subject != c.Subject || got.TokenID != c.TokenID || got.KeyID != key.ID ||
		!got.HasRole(token.RoleCustomer) || got.HasRole(token.RoleAdmin) || !got.Expiry.Equal(c.Expiry) {
		t.Errorf("claims = %+v, want those of %+v", got, c)
	}
}

func TestVerifyRefusesForgeries(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	v := newVerifier(t, key)
	good := validClaims()
	hdr := map[string]any{"alg": "EdDSA", "typ": token.Type, "kid": key.ID}
	with := func(m map[string]any, k string, val any) map[string]any {
		out := map[string]any{}
		for kk, vv := range m {
			out[kk] = vv
		}
		if val == nil {
			delete(out, k)
		} else {
			out[k] = val
		}
		return out
	}
	signed, err := token.Sign(key, good)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(signed, ".")
	hsInput := b64(with(hdr, "alg", "HS256")) + "." + b64(payload(good))
	mac := hmac.New(sha256.New, key.Public())
	mac.Write([]byte(hsInput))
	flipped := []byte(parts[1])
	flipped[10] ^= 0x01

	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"alg none", b64(with(hdr, "alg", "none")) + "." + b64(payload(good)) + ".", token.ErrMalformed},
		{"HS256 keyed with the public key", hsInput + "." + b64(mac.Sum(nil)), token.ErrMalformed},
		{"RS256 header", craft(key.Private, with(hdr, "alg", "RS256"), payload(good)), token.ErrMalformed},
		{"ES256 header", craft(key.Private, with(hdr, "alg", "ES256"), payload(good)), token.ErrMalformed},
		{"unknown kid", craft(other.Private, with(hdr, "kid", other.ID), payload(good)), token.ErrUnknownKey},
		{"missing kid", craft(key.Private, with(hdr, "kid", nil), payload(good)), token.ErrMalformed},
		{"kid with path characters", craft(key.Private, with(hdr, "kid", "../../etc/passwd"), payload(good)), token.ErrUnknownKey},
		{"kid with SQL", craft(key.Private, with(hdr, "kid", "x' OR '1'='1"), payload(good)), token.ErrUnknownKey},
		{"right kid, other key's signature", craft(other.Private, hdr, payload(good)), token.ErrSignature},
		{"typ JWT", craft(key.Private, with(hdr, "typ", "JWT"), payload(good)), token.ErrMalformed},
		{"typ id_token style", craft(key.Private, with(hdr, "typ", "application/jwt"), payload(good)), token.ErrMalformed},
		{"typ at+jwt with a suffix", craft(key.Private, with(hdr, "typ", "at+jwt; x=1"), payload(good)), token.ErrMalformed},
		{"missing typ", craft(key.Private, with(hdr, "typ", nil), payload(good)), token.ErrMalformed},
		{"jku header", craft(key.Private, with(hdr, "jku", "https://evil.test/jwks"), payload(good)), token.ErrMalformed},
		{"x5u header", craft(key.Private, with(hdr, "x5u", "https://evil.test/cert"), payload(good)), token.ErrMalformed},
		{"jwk header", craft(key.Private, with(hdr, "jwk", map[string]any{"kty": "OKP"}), payload(good)), token.ErrMalformed},
		{"crit header", craft(key.Private, with(hdr, "crit", []string{"exp"}), payload(good)), token.ErrMalformed},
		{"zip header", craft(key.Private, with(hdr, "zip", "DEF"), payload(good)), token.ErrMalformed},
		{"wrong iss", craft(key.Private, hdr, with(payload(good), "iss", "https://evil.test")), token.ErrClaims},
		{"wrong aud", craft(key.Private, hdr, with(payload(good), "aud", []string{"other"})), token.ErrClaims},
		{"empty aud array", craft(key.Private, hdr, with(payload(good), "aud", []string{})), token.ErrClaims},
		{"missing exp", craft(key.Private, hdr, with(payload(good), "exp", nil)), token.ErrClaims},
		{"missing jti", craft(key.Private, hdr, with(payload(good), "jti", nil)), token.ErrClaims},
		{"missing sub", craft(key.Private, hdr, with(payload(good), "sub", nil)), token.ErrClaims},
		{"missing iat", craft(key.Private, hdr, with(payload(good), "iat", nil)), token.ErrClaims},
		{"missing iss", craft(key.Private, hdr, with(payload(good), "iss", nil)), token.ErrClaims},
		{"missing aud", craft(key.Private, hdr, with(payload(good), "aud", nil)), token.ErrClaims},
		{"missing client_id", craft(key.Private, hdr, with(payload(good), "client_id", nil)), token.ErrClaims},
		{"empty client_id", craft(key.Private, hdr, with(payload(good), "client_id", "")), token.ErrClaims},
		{"oversized client_id", craft(key.Private, hdr, with(payload(good), "client_id", strings.Repeat("c", 256))), token.ErrClaims},
		{"expired past leeway", craft(key.Private, hdr, with(payload(good), "exp", testNow.Add(-31*time.Second).Unix())), token.ErrExpired},
		{"nbf in the future", craft(key.Private, hdr, with(payload(good), "nbf", testNow.Add(2*time.Minute).Unix())), token.ErrNotYetValid},
		{"iat in the future", craft(key.Private, hdr, with(payload(good), "iat", testNow.Add(2*time.Minute).Unix())), token.ErrNotYetValid},
		{"payload bit flipped", parts[0] + "." + string(flipped) + "." + parts[2], token.ErrSignature},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:20], token.ErrSignature},
		{"two segments", parts[0] + "." + parts[1], token.ErrMalformed},
		{"four segments", signed + ".x", token.ErrMalformed},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], token.ErrMalformed},
		{"8 KiB + 1", signed + strings.Repeat("A", token.MaxSize+1-len(signed)), token.ErrTooLarge},
		{"1 MiB", strings.Repeat("A", 1<<20), token.ErrTooLarge},
		{"empty", "", token.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyReturnsEveryClaim checks that each RFC 9068 claim Sign writes
// comes back from Verify, and that the header is the one RFC 9068 asks for.
func TestVerifyReturnsEveryClaim(t *testing.T) {
	key := newKey(t)
	c := validClaims()
	c.SessionID = token.NewSessionID(testNow.Add(-2 * time.Hour))
	c.AuthTime = testNow.Add(-2 * time.Hour)
	c.NotBefore = c.IssuedAt
	raw, err := token.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr["typ"] != "at+jwt" || hdr["alg"] != "EdDSA" || hdr["kid"] != key.ID {
		t.Errorf("header = %v, want typ at+jwt, alg EdDSA, kid %s", hdr, key.ID)
	}
	got, err := newVerifier(t, key).Verify(raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	tests := []struct {
		claim     string
		got, want any
	}{
		{"iss", got.Issuer, c.Issuer},
		{"sub", got.Subject, c.Subject},
		{"aud", strings.Join(got.Audience, ","), strings.Join(c.Audience, ",")},
		{"client_id", got.ClientID, c.ClientID},
		{"jti", got.TokenID, c.TokenID},
		{"sid", got.SessionID, c.SessionID},
		{"iat", got.IssuedAt.Unix(), c.IssuedAt.Unix()},
		{"nbf", got.NotBefore.Unix(), c.NotBefore.Unix()},
		{"exp", got.Expiry.Unix(), c.Expiry.Unix()},
		{"auth_time", got.AuthTime.Unix(), c.AuthTime.Unix()},
		{"roles", strings.Join(got.Roles, ","), strings.Join(c.Roles, ",")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.claim, tt.got, tt.want)
		}
	}
}

// TestVerifyAcceptsMediaTypeSpelling: RFC 9068 section 4 has resource
// servers accept "application/at+jwt" as well, and media types are
// case-insensitive.
func TestVerifyAcceptsMediaTypeSpelling(t *testing.T) {
	key := newKey(t)
	v := newVerifier(t, key)
	for _, typ := range []string{"at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"} {
		t.Run(typ, func(t *testing.T) {
			raw := craft(key.Private, map[string]any{"alg": "EdDSA", "typ": typ, "kid": key.ID}, payload(validClaims()))
			if _, err := v.Verify(raw); err != nil {
				t.Errorf("Verify(typ %q): %v", typ, err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	key := newKey(t)
	v := newVerifier(t, key)
	c := validClaims()
	c.IssuedAt = testNow.Add(-2 * time.Hour)
	c.Expiry = testNow.Add(-20 * time.Second) // expired, but within the 30 s leeway
	raw, err := token.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(raw); err != nil {
		t.Errorf("token expired within leeway: %v", err)
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	ks := token.NewKeySet(nil)
	tests := []struct {
		name string
		cfg  token.VerifierConfig
	}{
		{"no issuer", token.VerifierConfig{Audience: "a", Keys: ks}},
		{"no audience", token.VerifierConfig{Issuer: "i", Keys: ks}},
		{"no keys", token.VerifierConfig{Issuer: "i", Audience: "a"}},
		{"leeway too large", token.VerifierConfig{Issuer: "i", Audience: "a", Keys: ks, Leeway: 2 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := token.NewVerifier(tt.cfg); err == nil {
				t.Error("NewVerifier accepted a bad config")
			}
		})
	}
}

func TestSignRejectsIncompleteClaims(t *testing.T) {
	key := newKey(t)
	tests := []struct {
		name   string
		modify func(*token.Claims)
	}{
		{"no subject", func(c *token.Claims) { c.Subject = "" }},
		{"no issuer", func(c *token.Claims) { c.Issuer = "" }},
		{"no audience", func(c *token.Claims) { c.Audience = nil }},
		{"short jti", func(c *token.Claims) { c.TokenID = "abc" }},
		{"no client id", func(c *token.Claims) { c.ClientID = "" }},
		{"auth_time after iat", func(c *token.Claims) { c.AuthTime = c.IssuedAt.Add(time.Second) }},
		{"exp before iat", func(c *token.Claims) { c.Expiry = c.IssuedAt.Add(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims()
			tt.modify(&c)
			if _, err := token.Sign(key, c); err == nil {
				t.Error("Sign accepted incomplete claims")
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	key := newKey(b)
	c := validClaims()
	for b.Loop() {
		if _, err := token.Sign(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key := newKey(b)
	raw, err := token.Sign(key, validClaims())
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b, key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}
