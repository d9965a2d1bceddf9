package authsvc_test

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
)

// TestRefreshTokens covers rotation, concurrent refreshes across two
// replicas (exactly one winner, the others Aborted, the winner's successor
// live), and reuse detection (a spent token replayed after the grace
// period revokes the session and every access token issued in it, which
// the revocation feed then carries).
func TestRefreshTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := &clock{}
		a, b := startPair(t, dsn, func(c *authsvc.Config) {
			c.Now = clk.Now
			c.RefreshReuseGrace = 5 * time.Second
		})
		replicas := []*authsvctest.Server{a, b}
		ctx := t.Context()
		a.Register(t, "refresh@example.com")
		login := a.Login(t, "refresh@example.com")
		access := []string{login.GetAccessToken()}

		r1, err := b.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: login.GetRefreshToken()})
		if err != nil {
			t.Fatalf("RefreshToken: %v", err)
		}
		if r1.GetRefreshToken() == login.GetRefreshToken() || r1.GetAccessToken() == "" || r1.GetTokenType() != "Bearer" ||
			!r1.GetRefreshTokenExpireTime().AsTime().After(time.Now()) {
			t.Errorf("RefreshToken response %v", r1)
		}
		access = append(access, r1.GetAccessToken())
		if _, err := a.Client.GetMe(authsvctest.WithToken(ctx, r1.GetAccessToken()), &authv1.GetMeRequest{}); err != nil {
			t.Errorf("GetMe with a refreshed token: %v", err)
		}

		// Two tabs (here eight, on both replicas) refresh with one token.
		const n = 8
		resps := make([]*authv1.RefreshTokenResponse, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				resps[i], errs[i] = replicas[i%2].Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: r1.GetRefreshToken()})
			})
		}
		wg.Wait()
		var winner *authv1.RefreshTokenResponse
		for i, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				if winner != nil {
					t.Fatal("two concurrent refreshes of one token both won")
				}
				winner = resps[i]
			case codes.Aborted:
			default:
				t.Errorf("concurrent refresh %d: %v, want OK for one and Aborted for the others", i, err)
			}
		}
		if winner == nil {
			t.Fatal("no concurrent refresh won")
		}
		access = append(access, winner.GetAccessToken())
		r3, err := b.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: winner.GetRefreshToken()})
		if err != nil {
			t.Fatalf("the winner's successor was not live: %v", err)
		}
		access = append(access, r3.GetAccessToken())

		// Within the grace period a spent token is a race, not a replay.
		_, err = a.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: login.GetRefreshToken()})
		expect.Code(t, "spent token within the grace period", err, codes.Aborted)

		feed := watch(t, b, "")
		feed.syncUp(t)
		clk.Advance(10 * time.Second)
		_, err = a.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: login.GetRefreshToken()})
		expect.Code(t, "replayed spent token", err, codes.Unauthenticated)
		_, err = b.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: r3.GetRefreshToken()})
		expect.Code(t, "live token of a revoked session", err, codes.Unauthenticated)
		verify := a.Verifier(t, a.KeySet(t))
		for i, raw := range access {
			if r, err := b.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: raw}); err != nil || r.GetActive() {
				t.Errorf("access token %d of the revoked session: active=%v, %v", i, r.GetActive(), err)
			}
			c, err := verify.Verify(raw)
			if err != nil {
				t.Fatal(err)
			}
			feed.waitFor(t, c, 5*time.Second)
		}

		for _, bad := range []string{"", "not-a-token", string(make([]byte, 300))} {
			_, err := a.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: bad})
			expect.Code(t, "refresh with "+bad, err, codes.Unauthenticated)
		}
	})
}

// TestRevokeToken checks who may revoke what.
func TestRevokeToken(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{})
	ctx := t.Context()
	alice, aliceTok := s.NewCustomer(t)
	_, bobTok := s.NewCustomer(t)
	revoke := func(who, what string) error {
		_, err := s.Client.RevokeToken(authsvctest.WithToken(ctx, who), &authv1.RevokeTokenRequest{Token: what})
		return err
	}
	active := func(raw string) bool {
		r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: raw})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetActive()
	}

	expect.Code(t, "bob revokes alice's access token", revoke(bobTok, aliceTok), codes.PermissionDenied)
	expect.Code(t, "revoke a token that is not ours", revoke(bobTok, "a.b.c"), codes.InvalidArgument)
	expect.Code(t, "revoke nothing", revoke(bobTok, ""), codes.InvalidArgument)
	expect.Code(t, "revoke an unknown refresh token", revoke(bobTok, "unknown-refresh-token"), codes.OK)
	if !active(aliceTok) {
		t.Fatal("alice's token revoked by a refused call")
	}

	second := s.Login(t, alice.GetEmail())
	expect.Code(t, "alice revokes her own access token", revoke(second.GetAccessToken(), aliceTok), codes.OK)
	if active(aliceTok) {
		t.Error("revoked token still active")
	}
	expect.Code(t, "revoke it again", revoke(second.GetAccessToken(), aliceTok), codes.OK)

	expect.Code(t, "bob revokes alice's refresh token", revoke(bobTok, second.GetRefreshToken()), codes.PermissionDenied)
	_, err := s.Client.Logout(authsvctest.WithToken(ctx, bobTok), &authv1.LogoutRequest{RefreshToken: second.GetRefreshToken()})
	expect.Code(t, "bob logs out with alice's refresh token", err, codes.PermissionDenied)
	if !active(bobTok) {
		t.Error("a refused logout revoked the caller's token")
	}
	expect.Code(t, "alice revokes her refresh token", revoke(second.GetAccessToken(), second.GetRefreshToken()), codes.OK)
	if active(second.GetAccessToken()) {
		t.Error("access token of a revoked session still active")
	}
	_, err = s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: second.GetRefreshToken()})
	expect.Code(t, "refresh with a revoked refresh token", err, codes.Unauthenticated)

	expect.Code(t, "the admin revokes bob's token", revoke(s.AdminToken(t), bobTok), codes.OK)
	_, err = s.Client.GetMe(authsvctest.WithToken(ctx, bobTok), &authv1.GetMeRequest{})
	expect.Code(t, "GetMe with a token the admin revoked", err, codes.Unauthenticated)

	third := s.Login(t, alice.GetEmail())
	if _, err := s.Client.Logout(authsvctest.WithToken(ctx, third.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: third.GetRefreshToken()}); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err = s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: third.GetRefreshToken()})
	expect.Code(t, "refresh after logout with the refresh token", err, codes.Unauthenticated)
}
