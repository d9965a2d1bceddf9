package grpcauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/oidc"
	"github.com/tokencart/tokencart/internal/oidc/oidctest"
	"github.com/tokencart/tokencart/internal/token"
)

// TestTrustedIssuer: in both modes, with a trusted foreign issuer, each
// token goes to the check of its own issuer: authsvc's tokens as before,
// the foreign issuer's against its JWKS, with an owner namespaced by issuer;
// a token naming an issuer not configured is refused without the service
// fetching anything from it.
func TestTrustedIssuer(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{grpcauth.ModeLocal, grpcauth.ModeRemote} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			fake := grpcauthtest.Start(t)
			idp, stranger := oidctest.Start(t), oidctest.Start(t)
			cfg := baseConfig()
			cfg.Mode = mode
			cfg.TrustedIssuers = oidctest.ConfigFile(t, grpcauthtest.Audience, "shop-admin", idp.URL())
			cfg.TrustedIssuersCA = idp.CAFile(t)
			v := startValidator(t, fake, cfg)
			ctx := context.Background()
			foreign := idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice", "aud": grpcauthtest.Audience})
			expect.Eventually(t, testTimeout, "foreign issuer's keys loaded", func() bool {
				_, err := v.Authenticate(ctx, foreign)
				return err == nil
			})
			tests := []struct {
				name        string
				raw         string
				want        codes.Code
				wantSubject string
			}{
				{"authsvc", fake.Mint(t, "alice", token.RoleCustomer), codes.OK, "alice"},
				{"foreign ES256", foreign, codes.OK, oidc.Owner(idp.URL(), "alice")},
				{"foreign RS256", idp.Mint(t, oidctest.KidRS256, oidctest.Claims{"sub": "alice", "aud": grpcauthtest.Audience}), codes.OK, oidc.Owner(idp.URL(), "alice")},
				{"foreign, wrong audience", idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice", "aud": "other"}), codes.Unauthenticated, ""},
				{"untrusted issuer", stranger.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice", "aud": grpcauthtest.Audience}), codes.Unauthenticated, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c, err := v.Authenticate(ctx, tt.raw)
					if got := authCode(err); got != tt.want {
						t.Fatalf("code %v (%v), want %v", got, err, tt.want)
					}
					if err == nil && c.Subject != tt.wantSubject {
						t.Errorf("subject %q, want %q", c.Subject, tt.wantSubject)
					}
				})
			}
			if d, j, i := stranger.Calls(); d+j+i != 0 {
				t.Errorf("a token naming an untrusted issuer made the service call it %d times", d+j+i)
			}
		})
	}
}

// TestTrustedIssuerGuard: failed checks of foreign tokens spend the
// client address's budget like any other; a cached good token still
// passes.
func TestTrustedIssuerGuard(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	idp := oidctest.Start(t)
	cfg := baseConfig()
	cfg.TrustedIssuers = oidctest.ConfigFile(t, grpcauthtest.Audience, "shop-admin", idp.URL())
	cfg.TrustedIssuersCA = idp.CAFile(t)
	cfg.Guard = grpcauth.GuardConfig{Failures: 5, Every: time.Hour}
	v := startValidator(t, fake, cfg)
	ctx := context.Background()
	good := idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "alice", "aud": grpcauthtest.Audience})
	expect.Eventually(t, testTimeout, "foreign issuer's keys loaded", func() bool {
		_, err := v.Authenticate(ctx, good)
		return err == nil
	})
	var codesSeen []codes.Code
	for range 8 {
		bad := idp.Mint(t, oidctest.KidES256, oidctest.Claims{"sub": "mallory", "aud": "other"})
		_, err := v.Authenticate(ctx, bad)
		codesSeen = append(codesSeen, authCode(err))
	}
	want := []codes.Code{codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated,
		codes.ResourceExhausted, codes.ResourceExhausted, codes.ResourceExhausted}
	for i := range want {
		if codesSeen[i] != want[i] {
			t.Fatalf("codes %v, want %v", codesSeen, want)
		}
	}
	if _, err := v.Authenticate(ctx, good); err != nil {
		t.Errorf("a cached good foreign token from the refused address: %v", err)
	}
}

// TestTrustedIssuerMetrics: each trusted issuer's key set shows in the
// validator's metrics, labelled by issuer.
func TestTrustedIssuerMetrics(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	idp := oidctest.Start(t)
	cfg := baseConfig()
	cfg.TrustedIssuers = oidctest.ConfigFile(t, grpcauthtest.Audience, "shop-admin", idp.URL())
	cfg.TrustedIssuersCA = idp.CAFile(t)
	v := startValidator(t, fake, cfg)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(v.Collectors()...)
	loaded := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "tokencart_auth_issuer_keyset_loaded" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == idp.URL() {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	expect.Eventually(t, testTimeout, "tokencart_auth_issuer_keyset_loaded{issuer} == 1", func() bool { return loaded() == 1 })
}
