package grpcauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/token"
)

// mintIn returns a token of subject in session sid, issued at iat.
func mintIn(t *testing.T, fake *grpcauthtest.Server, subject, sid string, iat time.Time) string {
	t.Helper()
	return fake.MintClaims(t, token.Claims{
		Issuer: grpcauthtest.Issuer, Subject: subject, Audience: []string{grpcauthtest.Audience}, ClientID: grpcauthtest.ClientID,
		TokenID: token.NewID(), SessionID: sid, IssuedAt: iat, Expiry: iat.Add(time.Hour),
	})
}

// TestSessionAndAccountRevocation: a session entry refuses every token of
// that session and no other; an account entry every session of the account
// created before its cutoff, and tokens without a session issued by then.
func TestSessionAndAccountRevocation(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	v := startValidator(t, fake, baseConfig())
	ctx := context.Background()
	now := time.Now()
	s1, s2 := token.NewSessionID(now.Add(-time.Minute)), token.NewSessionID(now.Add(-time.Second))
	a1, a2 := mintIn(t, fake, "alice", s1, now), mintIn(t, fake, "alice", s1, now) // one session, two tokens (a refresh)
	other := mintIn(t, fake, "alice", s2, now)
	legacy := mintIn(t, fake, "alice", "", now.Add(-time.Minute))
	bob := mintIn(t, fake, "bob", token.NewSessionID(now.Add(-time.Hour)), now)
	for _, raw := range []string{a1, a2, other, legacy, bob} {
		if _, err := v.Authenticate(ctx, raw); err != nil {
			t.Fatalf("before any revocation: %v", err)
		}
	}
	fake.RevokeSession(t, a1)
	expect.Eventually(t, testTimeout, "the session entry", func() bool { _, err := v.Authenticate(ctx, a2); return err != nil })
	for name, raw := range map[string]string{"first token of the session": a1, "second token of the session": a2} {
		if _, err := v.Authenticate(ctx, raw); err == nil {
			t.Errorf("%s accepted after the session was revoked", name)
		}
	}
	for name, raw := range map[string]string{"another session": other, "no session": legacy, "another account": bob} {
		if _, err := v.Authenticate(ctx, raw); err != nil {
			t.Errorf("%s refused after a session revocation: %v", name, err)
		}
	}

	cut := now.Add(-30 * time.Second) // after s1 and the legacy token, before s2
	fake.RevokeAccount("alice", cut)
	expect.Eventually(t, testTimeout, "the account entry", func() bool { _, err := v.Authenticate(ctx, legacy); return err != nil })
	if _, err := v.Authenticate(ctx, other); err != nil {
		t.Errorf("a session created after the cutoff refused: %v", err)
	}
	if _, err := v.Authenticate(ctx, bob); err != nil {
		t.Errorf("another account refused: %v", err)
	}
	fake.RevokeAccount("alice", now)
	expect.Eventually(t, testTimeout, "the later cutoff", func() bool { _, err := v.Authenticate(ctx, other); return err != nil })
	if got := v.Status().Revocations; got != 1 {
		t.Errorf("holds %d entries, want 1: the account entry replaces the session entry it covers", got)
	}
}

// startFeed runs a Revocations following fake with cfg until the test ends.
func startFeed(t *testing.T, fake *grpcauthtest.Server, cfg grpcauth.RevocationsConfig) *grpcauth.Revocations {
	t.Helper()
	conn, err := grpc.NewClient(fake.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Client = authv1.NewAuthServiceClient(conn)
	cfg.Log = slog.New(slog.DiscardHandler)
	revs, err := grpcauth.NewRevocations(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- revs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		conn.Close()
	})
	return revs
}

// TestRevocationsPerAccountBounded: an issuer that sends ever more session
// entries for one account cannot make a replica hold more than
// MaxEntriesPerAccount of them (plus a cutoff); every session revoked is
// still refused.
func TestRevocationsPerAccountBounded(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	revs := startFeed(t, fake, grpcauth.RevocationsConfig{})
	base := time.Now().Add(-time.Hour)
	var revoked []token.Claims
	for i := range 5 * grpcauth.MaxEntriesPerAccount {
		sid := token.NewSessionID(base.Add(time.Duration(i) * time.Millisecond))
		c := token.Claims{Subject: "mallory", SessionID: sid, TokenID: token.NewID(), IssuedAt: base}
		revoked = append(revoked, c)
		fake.PublishEntry(&authv1.Revocation{Kind: authv1.RevocationKind_REVOCATION_KIND_SESSION, Subject: "mallory", SessionId: sid,
			ExpireTime: timestamppb.New(time.Now().Add(time.Hour))})
	}
	expect.Eventually(t, testTimeout, "every entry", func() bool { return revs.Revoked(revoked[len(revoked)-1]) })
	if got := revs.Len(); got > grpcauth.MaxEntriesPerAccount+1 {
		t.Errorf("holds %d entries for one account, bound is %d", got, grpcauth.MaxEntriesPerAccount+1)
	}
	for i, c := range revoked {
		if !revs.Revoked(c) {
			t.Fatalf("revoked session %d is no longer refused", i)
		}
	}
	if revs.Revoked(token.Claims{Subject: "someone-else", SessionID: revoked[0].SessionID, TokenID: "x"}) {
		t.Error("another account's token refused")
	}
}

// TestRevocationCapacity: past its capacity the set is incomplete, which
// makes the local check stale (never accepting a token unchecked); once
// expiry makes room it replays the whole state and is complete again.
func TestRevocationCapacity(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t, grpcauthtest.WithHeartbeat(20*time.Millisecond))
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	revs := startFeed(t, fake, grpcauth.RevocationsConfig{Capacity: 10, PruneEvery: 50 * time.Millisecond, Now: clock})
	expect.Eventually(t, testTimeout, "the first replay", revs.Complete)
	for i := range 12 { // an account and a session entry each: 24 > 10
		fake.PublishEntry(&authv1.Revocation{Kind: authv1.RevocationKind_REVOCATION_KIND_SESSION, Subject: fmt.Sprint("u", i),
			SessionId: token.NewSessionID(time.Now()), ExpireTime: timestamppb.New(time.Now().Add(time.Hour))})
	}
	expect.Eventually(t, testTimeout, "the set to overflow", func() bool { return !revs.Complete() })
	if got := revs.Len(); got > 10 {
		t.Errorf("holds %d entries, capacity 10", got)
	}
	// Every entry expires: the next prune makes room, and the replay of
	// the (now expired) state fits.
	offset.Store(int64(3 * time.Hour))
	expect.Eventually(t, testTimeout, "a resync", func() bool { return revs.Complete() && revs.Resyncs() > 0 })
	if got := revs.Len(); got != 0 {
		t.Errorf("after the resync: %d entries, want 0", got)
	}
}

// TestUnknownEntryKind: an entry the replica cannot read leaves the set
// incomplete (stale policy), rather than ignoring what may be a revocation.
func TestUnknownEntryKind(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	cfg := baseConfig()
	cfg.StalePolicy = grpcauth.StaleRefuse
	v := startValidator(t, fake, cfg)
	good := fake.Mint(t, "u")
	if _, err := v.Authenticate(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	fake.PublishEntry(&authv1.Revocation{Kind: authv1.RevocationKind(99), Subject: "u", ExpireTime: timestamppb.New(time.Now().Add(time.Hour))})
	expect.Eventually(t, testTimeout, "the set to be incomplete", func() bool { return !v.Status().FeedComplete })
	if _, err := v.Authenticate(context.Background(), good); authCode(err) != codes.Unavailable {
		t.Errorf("after an unknown entry: code %v, want Unavailable (stale policy refuse)", authCode(err))
	}
}
