package authsvc_test

import (
	"crypto/ed25519"
	"runtime"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// BenchmarkLogin measures whole Login calls over gRPC against a SQLite
// store with the minimum argon2id parameters (m=19 MiB, t=2, p=1), one
// hash per core at a time: the number to size replicas by.
func BenchmarkLogin(b *testing.B) {
	s := authsvctest.Start(b, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.HashConcurrency = runtime.GOMAXPROCS(0)
		c.LoginAccountLimit = 1 << 30
	}})
	s.Register(b, "bench@example.com")
	req := &authv1.LoginRequest{Email: "bench@example.com", Password: authsvctest.Password}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Client.Login(b.Context(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
}

// accessClaims are claims shaped like the service's.
func accessClaims() token.Claims {
	now := time.Now()
	return token.Claims{
		Issuer: "tokencart-authsvc", Subject: token.NewID(), Audience: []string{"tokencart"},
		Roles: []string{token.RoleCustomer}, TokenID: token.NewID(), ClientID: "tokencart",
		IssuedAt: now, NotBefore: now, Expiry: now.Add(24 * time.Hour),
	}
}

// BenchmarkMintAccessToken: a fresh token id and an EdDSA signature, as
// Login and RefreshToken mint.
func BenchmarkMintAccessToken(b *testing.B) {
	key, _ := token.GenerateSigningKey()
	c := accessClaims()
	b.ReportAllocs()
	for b.Loop() {
		c.TokenID = token.NewID()
		if _, err := token.Sign(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAccessToken: what a verifying service (catalogsvc) does
// per request, before its revocation lookup.
func BenchmarkVerifyAccessToken(b *testing.B) {
	key, _ := token.GenerateSigningKey()
	raw, err := token.Sign(key, accessClaims())
	if err != nil {
		b.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer: "tokencart-authsvc", Audience: "tokencart",
		Keys: token.NewKeySet(map[string]ed25519.PublicKey{key.ID: key.Public()}),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate: authsvc's own check of a bearer token, the
// signature plus a revocation lookup in the store (SQLite).
func BenchmarkAuthenticate(b *testing.B) {
	s := authsvctest.Start(b, authsvctest.Options{})
	_, raw := s.NewCustomer(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Service.Authenticate(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
