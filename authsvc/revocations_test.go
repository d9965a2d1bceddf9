package authsvc_test

import (
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// TestWatchRevocations covers replay from the start and from a cursor,
// heartbeats and bad cursors.
func TestWatchRevocations(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{})
	ctx := t.Context()
	u, _ := s.NewCustomer(t)
	// logout logs in and out, and returns the token's claims.
	logout := func() token.Claims {
		login := s.Login(t, u.GetEmail())
		if _, err := s.Client.Logout(authsvctest.WithToken(ctx, login.GetAccessToken()), &authv1.LogoutRequest{}); err != nil {
			t.Fatal(err)
		}
		c, err := s.Verifier(t, s.KeySet(t)).Verify(login.GetAccessToken())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ids := func(revs []*authv1.Revocation) (out []string) {
		for _, r := range revs {
			out = append(out, entryID(r))
		}
		return out
	}
	sids := func(cs ...token.Claims) (out []string) {
		for _, c := range cs {
			out = append(out, c.SessionID)
		}
		return out
	}

	empty := watch(t, s, "")
	if got := empty.syncUp(t); len(got) != 0 {
		t.Errorf("replay of an empty feed: %v", got)
	}
	first := []token.Claims{logout(), logout(), logout()}
	w := watch(t, s, "")
	if got := ids(w.syncUp(t)); !slices.Equal(got, sids(first...)) {
		t.Fatalf("replay = %v, want the sessions %v in order", got, sids(first...))
	}
	hb := w.next(t, 2*time.Second)
	if len(hb.GetRevocations()) != 0 || hb.GetHeartbeatInterval().AsDuration() != s.Config.RevocationHeartbeat || hb.GetCursor() == "" {
		t.Errorf("heartbeat = %v", hb)
	}
	for _, c := range first {
		empty.waitFor(t, c, 5*time.Second)
	}

	fourth := logout()
	resumed := watch(t, s, hb.GetCursor())
	if got := ids(resumed.syncUp(t)); !slices.Equal(got, sids(fourth)) {
		t.Errorf("replay from the cursor = %v, want [%s]", got, fourth.SessionID)
	}

	for name, cursor := range map[string]string{
		"garbage":     "not a cursor!",
		"other shape": base64.RawURLEncoding.EncodeToString([]byte("xx:1")),
		// The cursor format is opaque to clients, but a test may know it:
		// a sequence number the store never reached.
		"from the future": base64.RawURLEncoding.EncodeToString([]byte("rv1:999999")),
	} {
		stream, err := s.ServiceClient.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{Cursor: cursor})
		if err == nil {
			_, err = stream.Recv()
		}
		expect.Code(t, name+" cursor", err, codes.InvalidArgument)
	}
}

// TestRevocationDelayBetweenReplicas measures how long a revocation made on
// one replica takes to reach a WatchRevocations stream on another, at the
// production poll interval. It reports and does not assert.
func TestRevocationDelayBetweenReplicas(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		poll := authsvc.DefaultConfig().RevocationPollInterval
		a, b := startPair(t, dsn, func(c *authsvc.Config) {
			c.RevocationPollInterval = poll
			c.Serve.MaxConnectionAge = time.Hour // one stream for the whole measurement
			c.RefreshLimit = 100
		})
		ctx := t.Context()
		u, _ := a.NewCustomer(t)
		login := a.Login(t, u.GetEmail())
		refresh, asUser := login.GetRefreshToken(), authsvctest.WithToken(ctx, login.GetAccessToken())
		feed := watch(t, b, "")
		feed.syncUp(t)
		verify := a.Verifier(t, a.KeySet(t))
		var delays []time.Duration
		for range 10 {
			// RefreshToken mints a token without an argon2id hash; each
			// is revoked alone, so that the session lives on.
			r, err := a.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: refresh})
			if err != nil {
				t.Fatal(err)
			}
			refresh = r.GetRefreshToken()
			c, err := verify.Verify(r.GetAccessToken())
			if err != nil {
				t.Fatal(err)
			}
			// A random pause spreads the revocations over the poll cycle
			// (otherwise each would follow the previous receipt, just after
			// a poll, and measure the worst case every time).
			time.Sleep(rand.N(poll))
			start := time.Now()
			if _, err := a.Client.RevokeToken(asUser, &authv1.RevokeTokenRequest{
				Token: r.GetAccessToken(), Scope: authv1.RevocationScope_REVOCATION_SCOPE_TOKEN,
			}); err != nil {
				t.Fatal(err)
			}
			feed.waitFor(t, c, 5*time.Second)
			delays = append(delays, time.Since(start))
		}
		slices.Sort(delays)
		t.Logf("%s: revocation delay a->b (Logout call to stream receipt, poll interval %v, %d samples): min %v, median %v, max %v",
			t.Name(), poll, len(delays), delays[0].Round(time.Millisecond), delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond))
	})
}
