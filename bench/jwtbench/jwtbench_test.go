package jwtbench

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	gojwt "github.com/golang-jwt/jwt/v5"
)

const (
	issuer   = "tokencart-authsvc"
	audience = "tokencart"
	kid      = "bench-key"
)

// The same claims through both libraries: the registered ones and roles.
var (
	now     = time.Now()
	subject = "user-0123456789abcdef"
	tokenID = "jti-0123456789abcdef0123"
)

type joseRoles struct {
	Roles []string `json:"roles"`
}

type jwtClaims struct {
	gojwt.RegisteredClaims
	Roles []string `json:"roles"`
}

func key(b testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return pub, priv
}

func joseSign(b testing.TB, priv ed25519.PrivateKey) string {
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, opts)
	if err != nil {
		b.Fatal(err)
	}
	std := josejwt.Claims{
		Issuer: issuer, Subject: subject, Audience: josejwt.Audience{audience}, ID: tokenID,
		IssuedAt: josejwt.NewNumericDate(now), NotBefore: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Hour)),
	}
	raw, err := josejwt.Signed(signer).Claims(std).Claims(joseRoles{Roles: []string{"customer"}}).Serialize()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func joseVerify(b testing.TB, pub ed25519.PublicKey, raw string) {
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		b.Fatal(err)
	}
	var std josejwt.Claims
	var roles joseRoles
	if err := tok.Claims(pub, &std, &roles); err != nil {
		b.Fatal(err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: issuer, AnyAudience: josejwt.Audience{audience}, Time: time.Now()}, 30*time.Second); err != nil {
		b.Fatal(err)
	}
}

func jwtSign(b testing.TB, priv ed25519.PrivateKey) string {
	t := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, jwtClaims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer: issuer, Subject: subject, Audience: gojwt.ClaimStrings{audience}, ID: tokenID,
			IssuedAt: gojwt.NewNumericDate(now), NotBefore: gojwt.NewNumericDate(now), ExpiresAt: gojwt.NewNumericDate(now.Add(time.Hour)),
		},
		Roles: []string{"customer"},
	})
	t.Header["kid"] = kid
	t.Header["typ"] = "at+jwt"
	raw, err := t.SignedString(priv)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func jwtVerify(b testing.TB, parser *gojwt.Parser, pub ed25519.PublicKey, raw string) {
	var c jwtClaims
	if _, err := parser.ParseWithClaims(raw, &c, func(*gojwt.Token) (any, error) { return pub, nil }); err != nil {
		b.Fatal(err)
	}
}

func newJWTParser() *gojwt.Parser {
	return gojwt.NewParser(gojwt.WithValidMethods([]string{"EdDSA"}), gojwt.WithIssuer(issuer), gojwt.WithAudience(audience),
		gojwt.WithExpirationRequired(), gojwt.WithIssuedAt(), gojwt.WithLeeway(30*time.Second))
}

func BenchmarkSign(b *testing.B) {
	_, priv := key(b)
	b.Run("go-jose-v4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			joseSign(b, priv)
		}
	})
	b.Run("golang-jwt-v5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			jwtSign(b, priv)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	pub, priv := key(b)
	b.Run("go-jose-v4", func(b *testing.B) {
		raw := joseSign(b, priv)
		b.ReportAllocs()
		for b.Loop() {
			joseVerify(b, pub, raw)
		}
	})
	b.Run("golang-jwt-v5", func(b *testing.B) {
		raw := jwtSign(b, priv)
		parser := newJWTParser()
		b.ReportAllocs()
		for b.Loop() {
			jwtVerify(b, parser, pub, raw)
		}
	})
}

// BenchmarkSignVerify is a token's whole life: minted once, checked once.
func BenchmarkSignVerify(b *testing.B) {
	pub, priv := key(b)
	b.Run("go-jose-v4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			joseVerify(b, pub, joseSign(b, priv))
		}
	})
	b.Run("golang-jwt-v5", func(b *testing.B) {
		parser := newJWTParser()
		b.ReportAllocs()
		for b.Loop() {
			jwtVerify(b, parser, pub, jwtSign(b, priv))
		}
	})
}

// TestInterop: each library verifies the other's tokens, so the benchmark
// compares like with like.
func TestInterop(t *testing.T) {
	pub, priv := key(t)
	jwtVerify(t, newJWTParser(), pub, joseSign(t, priv))
	joseVerify(t, pub, jwtSign(t, priv))
}
