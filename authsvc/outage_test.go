package authsvc_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc/authtest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/pgtest"
)

// TestStoreOutage cuts authsvc's connection to PostgreSQL: calls that need
// the store get Unavailable (which clients retry) instead of Internal, and
// work again once the database is back.
func TestStoreOutage(t *testing.T) {
	link, dsn := pgtest.NewLink(t, pgtest.DSN(t))
	s := authtest.Start(t, authtest.Options{DSN: dsn})
	s.Register(t, "before@example.com")

	link.Cut()
	ctx := t.Context()
	_, err := s.Client.Register(ctx, &authv1.RegisterRequest{Email: "during@example.com", Password: authtest.Password})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("Register during the outage: %v (%v), want Unavailable", got, err)
	}
	_, err = s.Client.Login(ctx, &authv1.LoginRequest{Email: "before@example.com", Password: authtest.Password})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("Login during the outage: %v (%v), want Unavailable", got, err)
	}

	link.Restore()
	eventually(t, 30*time.Second, "Login after the outage", func() bool {
		_, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: "before@example.com", Password: authtest.Password})
		return err == nil
	})
	s.Register(t, "after@example.com")
}
