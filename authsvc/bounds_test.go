package authsvc_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// fromAddress returns ctx as a request from addr, for a server configured
// with one trusted proxy hop.
func fromAddress(ctx context.Context, addr string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", addr)
}

// TestRefreshChurnBounded: refreshing one session is limited per session
// (RESOURCE_EXHAUSTED with a RetryInfo, the session's token still good
// afterwards), and replaying a spent refresh token revokes the session with
// one revocation entry, however many access tokens it was refreshed into:
// the store and the feed carry one entry, and every one of those tokens is
// refused.
func TestRefreshChurnBounded(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := &clock{}
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.Now = clk.Now
			c.RefreshLimit = 10
		}})
		probe := openProbe(t, dsn)
		ctx := t.Context()
		u, _ := s.NewCustomer(t)
		login := s.Login(t, u.GetEmail())
		first, current := login.GetRefreshToken(), login.GetRefreshToken()
		access := []string{login.GetAccessToken()}
		refused := 0
		for range 30 {
			r, err := s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: current})
			if status.Code(err) == codes.ResourceExhausted {
				if d := retryDelay(t, err); d <= 0 || d > time.Minute {
					t.Errorf("refused refresh: retry delay %v", d)
				}
				refused++
				continue
			}
			if err != nil {
				t.Fatalf("RefreshToken: %v", err)
			}
			current = r.GetRefreshToken()
			access = append(access, r.GetAccessToken())
		}
		if len(access)-1 != 10 || refused != 20 {
			t.Errorf("%d refreshes accepted and %d refused, want 10 and 20 (the session's limit)", len(access)-1, refused)
		}
		// The window passes: the session's refresh token still works.
		clk.Advance(time.Minute)
		r, err := s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: current})
		if err != nil {
			t.Fatalf("refresh after the window: %v", err)
		}
		access = append(access, r.GetAccessToken())

		if got := probe.rows(t, "sessions"); got != 2 { // the customer's first login, and this one
			t.Errorf("%d session rows after %d refreshes, want 2: one per session", got, len(access)-1)
		}
		feed := watch(t, s, "")
		feed.syncUp(t)
		entriesBefore := probe.rows(t, "revocation_entries")
		clk.Advance(time.Minute) // past the reuse grace
		_, err = s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: first})
		expect.Code(t, "replayed spent refresh token", err, codes.Unauthenticated)
		if got := probe.rows(t, "revocation_entries") - entriesBefore; got != 1 {
			t.Errorf("the replay recorded %d revocation entries for a session refreshed %d times, want 1", got, len(access)-1)
		}
		if got := probe.rows(t, "sessions"); got != 1 { // the customer's first login
			t.Errorf("%d session rows after the replay, want 1: the revoked session's is deleted", got)
		}
		verify, err := token.NewVerifier(token.VerifierConfig{Issuer: s.Config.Issuer, Audience: s.Config.Audience, Keys: s.KeySet(t), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		var entry *authv1.Revocation
		for i, raw := range access {
			if r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: raw}); err != nil || r.GetActive() {
				t.Errorf("access token %d of the revoked session: active=%v, %v", i, r.GetActive(), err)
			}
			c, err := verify.Verify(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := feed.waitFor(t, c, 5*time.Second)
			if entry != nil && got != entry {
				t.Errorf("access token %d revoked by another entry than the others", i)
			}
			entry = got
		}
		if entry.GetKind() != authv1.RevocationKind_REVOCATION_KIND_SESSION {
			t.Errorf("revoked by %v, want a session entry", entry)
		}
	})
}

// TestRefreshAddressLimit: one client address cannot refresh many sessions
// without bound either.
func TestRefreshAddressLimit(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.RefreshAddressLimit, c.RefreshLimit, c.Guard.TrustedProxyHops = 3, 3, 1
	}})
	ctx := t.Context()
	var tokens []string
	for range 4 {
		u, _ := s.NewCustomer(t)
		tokens = append(tokens, s.Login(t, u.GetEmail()).GetRefreshToken())
	}
	for i, tok := range tokens {
		_, err := s.Client.RefreshToken(fromAddress(ctx, "198.51.100.7"), &authv1.RefreshTokenRequest{RefreshToken: tok})
		want := codes.OK
		if i == 3 {
			want = codes.ResourceExhausted
		}
		expect.Code(t, fmt.Sprint("refresh ", i+1, " from one address"), err, want)
	}
	if _, err := s.Client.RefreshToken(fromAddress(ctx, "198.51.100.8"), &authv1.RefreshTokenRequest{RefreshToken: tokens[3]}); err != nil {
		t.Errorf("the same session from another address: %v", err)
	}
}

// TestRevocationStateBounded: however many sessions one account logs in
// and out, the store, and a replay of the feed from the start, hold at most
// --revocations-per-account entries plus one for it, and every one of those
// sessions stays refused.
func TestRevocationStateBounded(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) { c.RevocationsPerAccount = 3 }})
		probe := openProbe(t, dsn)
		ctx := t.Context()
		u, _ := s.NewCustomer(t)
		var tokens []string
		for range 9 {
			tok := s.Login(t, u.GetEmail()).GetAccessToken()
			if _, err := s.Client.Logout(authsvctest.WithToken(ctx, tok), &authv1.LogoutRequest{}); err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, tok)
			if n := probe.rows(t, "revocation_entries"); n > 4 {
				t.Fatalf("%d revocation entries for one account after %d logouts, want at most 4", n, len(tokens))
			}
		}
		replay := watch(t, s, "").syncUp(t)
		if len(replay) > 4 {
			t.Errorf("a replay from the start sent %d entries, want at most 4: the state, not its history", len(replay))
		}
		for i, tok := range tokens {
			if r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tok}); err != nil || r.GetActive() {
				t.Errorf("session %d active again: %v, %v", i, r.GetActive(), err)
			}
		}
		// A login after all that is a live session.
		if _, err := s.Client.GetMe(authsvctest.WithToken(ctx, s.Login(t, u.GetEmail()).GetAccessToken()), &authv1.GetMeRequest{}); err != nil {
			t.Errorf("a new session after the revocations: %v", err)
		}
	})
}

// TestLogoutEverywhere revokes every session of the account with one
// entry; a login right after (the same second) is live.
func TestLogoutEverywhere(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{})
	ctx := t.Context()
	u, other := s.NewCustomer(t)
	a, b := s.Login(t, u.GetEmail()), s.Login(t, u.GetEmail())
	_, bystander := s.NewCustomer(t)
	if _, err := s.Client.Logout(authsvctest.WithToken(ctx, a.GetAccessToken()), &authv1.LogoutRequest{AllSessions: true}); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"the caller's session": a.GetAccessToken(), "another session": b.GetAccessToken(), "the first session": other} {
		_, err := s.Client.GetMe(authsvctest.WithToken(ctx, tok), &authv1.GetMeRequest{})
		expect.Code(t, name+" after logging out everywhere", err, codes.Unauthenticated)
	}
	_, err := s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: b.GetRefreshToken()})
	expect.Code(t, "another session's refresh token", err, codes.Unauthenticated)
	if _, err := s.Client.GetMe(authsvctest.WithToken(ctx, s.Login(t, u.GetEmail()).GetAccessToken()), &authv1.GetMeRequest{}); err != nil {
		t.Errorf("a login right after: %v", err)
	}
	if _, err := s.Client.GetMe(authsvctest.WithToken(ctx, bystander), &authv1.GetMeRequest{}); err != nil {
		t.Errorf("another account: %v", err)
	}
}

// TestSingleTokenRevocationLimited: revoking one access token (not its
// session) is possible but limited per caller.
func TestSingleTokenRevocationLimited(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.TokenRevocationLimit = 3 }})
	ctx := t.Context()
	u, me := s.NewCustomer(t)
	for i := range 4 {
		tok := s.Login(t, u.GetEmail()).GetAccessToken()
		_, err := s.Client.RevokeToken(authsvctest.WithToken(ctx, me), &authv1.RevokeTokenRequest{Token: tok, Scope: authv1.RevocationScope_REVOCATION_SCOPE_TOKEN})
		want := codes.OK
		if i == 3 {
			want = codes.ResourceExhausted
		}
		expect.Code(t, fmt.Sprint("single-token revocation ", i+1), err, want)
	}
}

// TestServiceMethodsNeedService: the revocation feed and introspection
// answer services only, and streams per client connection are bounded.
func TestServiceMethodsNeedService(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.RevocationStreamsPerConnection = 2 }})
	ctx := t.Context()
	_, tok := s.NewCustomer(t)
	watchErr := func(c authv1.AuthServiceClient, ctx context.Context) error {
		stream, err := c.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		return err
	}
	expect.Code(t, "anonymous WatchRevocations", watchErr(s.Client, ctx), codes.Unauthenticated)
	expect.Code(t, "WatchRevocations with a user's token", watchErr(s.Client, authsvctest.WithToken(ctx, tok)), codes.Unauthenticated)
	wrong := metadata.AppendToOutgoingContext(ctx, grpcauth.ServiceCredentialHeader, strings.Repeat("A", 43)+"=")
	expect.Code(t, "WatchRevocations with a wrong credential", watchErr(s.Client, wrong), codes.PermissionDenied)
	_, err := s.Client.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tok})
	expect.Code(t, "anonymous IntrospectToken", err, codes.Unauthenticated)
	if r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tok}); err != nil || !r.GetActive() {
		t.Errorf("IntrospectToken as a service: %v, %v", r, err)
	}

	// Two streams on one connection; a third is refused until one ends.
	first, second := watch(t, s, ""), watch(t, s, "")
	first.syncUp(t)
	second.syncUp(t)
	third, cancel := context.WithCancel(ctx)
	defer cancel()
	err = watchErr(s.ServiceClient, third)
	expect.Code(t, "a third stream on one connection", err, codes.ResourceExhausted)
	if d := retryDelay(t, err); d <= 0 {
		t.Errorf("retry delay %v", d)
	}
}

// TestRegisterLimited: one address registers a bounded number of
// accounts, and a flood of registrations from many addresses leaves logins
// their hashing slots.
func TestRegisterLimited(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.RegisterAddressLimit, c.Guard.TrustedProxyHops = 3, 1
		c.HashConcurrency, c.HashQueueTimeout = 2, 300*time.Millisecond
	}})
	ctx := t.Context()
	register := func(addr, email string) error {
		_, err := s.Client.Register(fromAddress(ctx, addr), &authv1.RegisterRequest{Email: email, Password: authsvctest.Password})
		return err
	}
	for i := range 4 {
		want := codes.OK
		if i == 3 {
			want = codes.ResourceExhausted
		}
		expect.Code(t, fmt.Sprint("registration ", i+1, " from one address"), register("198.51.100.1", fmt.Sprintf("r%d@example.com", i)), want)
	}
	expect.Code(t, "registration from another address", register("198.51.100.2", "other@example.com"), codes.OK)

	// Many addresses register at once (each within its limit) while one
	// client logs in again and again: no login is refused for want of a
	// hashing slot.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = register(fmt.Sprintf("203.0.%d.%d", w, i%250+1), fmt.Sprintf("flood-%d-%d@example.com", w, i))
			}
		})
	}
	refused := 0
	for range 6 {
		_, err := s.Client.Login(fromAddress(ctx, "192.0.2.1"), &authv1.LoginRequest{Email: "other@example.com", Password: authsvctest.Password})
		switch status.Code(err) {
		case codes.OK:
		case codes.ResourceExhausted:
			refused++
		default:
			t.Errorf("login during the flood: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if refused > 0 {
		t.Errorf("%d of 6 logins refused for want of a hashing slot during a registration flood", refused)
	}
}

// TestForgedTokensLimited: a client address that keeps presenting tokens
// that fail is refused before any signature check, and one forged token
// presented again is refused for a lookup; a good token from another
// address is unaffected.
func TestForgedTokensLimited(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.Guard.Failures, c.Guard.Every, c.Guard.TrustedProxyHops = 5, time.Hour, 1
	}})
	ctx := t.Context()
	_, good := s.NewCustomer(t)
	f := newForger(t, s, good)
	getMe := func(addr, tok string) error {
		_, err := s.Client.GetMe(fromAddress(authsvctest.WithToken(ctx, tok), addr), &authv1.GetMeRequest{})
		return err
	}
	other, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	codesSeen := map[codes.Code]int{}
	for i := range 20 {
		// Our kid, another key's signature: each costs a signature check.
		forged := sign(other.Private, f.hdr, set(f.payload, "jti", fmt.Sprint("forged-", i)))
		codesSeen[status.Code(getMe("198.51.100.9", forged))]++
	}
	if codesSeen[codes.Unauthenticated] != 5 || codesSeen[codes.ResourceExhausted] != 15 {
		t.Errorf("20 forged tokens from one address: %v, want 5 checked (Unauthenticated) and 15 refused unheard", codesSeen)
	}
	if err := getMe("198.51.100.10", good); err != nil {
		t.Errorf("a good token from another address: %v", err)
	}
}

// TestLoginChurnBounded: an account's live sessions are bounded; a login
// beyond the bound revokes the oldest, whose tokens are refused, so logging
// in over and over grows neither the sessions nor the revocation entries
// without bound.
func TestLoginChurnBounded(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.SessionsPerAccount, c.RevocationsPerAccount = 2, 3
		}})
		probe := openProbe(t, dsn)
		ctx := t.Context()
		u, _ := s.NewCustomer(t)
		var tokens []string
		for i := range 7 {
			tokens = append(tokens, s.Login(t, u.GetEmail()).GetAccessToken())
			if n := probe.rows(t, "sessions"); n > 2 {
				t.Fatalf("%d live sessions after login %d, want at most 2", n, i+1)
			}
			if n := probe.rows(t, "revocation_entries"); n > 4 {
				t.Fatalf("%d revocation entries after login %d, want at most 4", n, i+1)
			}
		}
		for i, tok := range tokens {
			_, err := s.Client.GetMe(authsvctest.WithToken(ctx, tok), &authv1.GetMeRequest{})
			want := codes.Unauthenticated
			if i >= len(tokens)-2 {
				want = codes.OK
			}
			expect.Code(t, fmt.Sprint("login ", i+1, " of ", len(tokens)), err, want)
		}
	})
}
