package grpcauth_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// TestRevocationFeedOutlivesConnectionAge runs the feed against a real
// authsvc that closes every connection 300 ms after it opens, with 2 s of
// grace after its GOAWAY. With streams that live 500 ms the feed opens each
// new one on the client's newest connection, so no stream is on a
// connection when authsvc closes it: over several connection lifetimes the
// feed is never interrupted, and every revocation arrives promptly. (With
// streams kept for an hour, each close interrupts the feed.)
func TestRevocationFeedOutlivesConnectionAge(t *testing.T) {
	t.Parallel()
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.Serve.MaxConnectionAge = 300 * time.Millisecond
		c.Serve.MaxConnectionAgeGrace = 2 * time.Second
	}})
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcauth.ServiceCredential(authsvctest.TestServiceCredential)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var logs expect.LogBuffer
	revs, err := grpcauth.NewRevocations(grpcauth.RevocationsConfig{
		Client:         authv1.NewAuthServiceClient(conn),
		StreamLifetime: 500 * time.Millisecond,
		Log:            slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- revs.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	s.Register(t, "feed@example.com")
	var slowest time.Duration
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		access := s.Login(t, "feed@example.com").GetAccessToken()
		intro, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: access})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client.Logout(authsvctest.WithToken(ctx, access), &authv1.LogoutRequest{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c := token.Claims{Subject: intro.GetSubject(), TokenID: intro.GetTokenId(), SessionID: intro.GetSessionId(), IssuedAt: intro.GetIssueTime().AsTime()}
		expect.Eventually(t, testTimeout, "the revocation", func() bool { return revs.Revoked(c) })
		slowest = max(slowest, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("streams opened: %d; slowest revocation: %v", revs.Connects(), slowest)
	if revs.Connects() < 8 {
		t.Errorf("%d streams opened in 6 s, want one every 500 ms", revs.Connects())
	}
	if strings.Contains(logs.String(), "revocation feed interrupted") {
		t.Errorf("the feed was interrupted:\n%s", logs.String())
	}
}
