package authsvc_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/rpcerr"
)

// TestErrorDetails: every refusal a client can meet carries, over a real
// connection, an ErrorInfo with a stable reason in the tokencart domain;
// invalid arguments name their field in a BadRequest; limits say when to
// retry in a RetryInfo.
func TestErrorDetails(t *testing.T) {
	t.Parallel()
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.RegisterAddressLimit = 3 }})
	email := "details@example.com"
	s.Register(t, email)
	ctx := t.Context()
	customer := authsvctest.WithToken(ctx, s.Login(t, email).GetAccessToken())
	tests := []struct {
		name string
		call func(context.Context) error
		want expect.Failure
	}{
		{"register with a bad email", func(ctx context.Context) error {
			_, err := s.Client.Register(ctx, &authv1.RegisterRequest{Email: "not-an-address", Password: authsvctest.Password})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "email"}},
		{"register with a short password", func(ctx context.Context) error {
			_, err := s.Client.Register(ctx, &authv1.RegisterRequest{Email: "short@example.com", Password: "short"})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "password"}},
		{"register a taken email", func(ctx context.Context) error {
			_, err := s.Client.Register(ctx, &authv1.RegisterRequest{Email: email, Password: authsvctest.Password})
			return err
		}, expect.Failure{Code: codes.AlreadyExists, Reason: authsvc.ReasonEmailTaken}},
		{"login with a wrong password", func(ctx context.Context) error {
			_, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: email, Password: "wrong password"})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: authsvc.ReasonBadCredentials}},
		{"refresh with a made-up token", func(ctx context.Context) error {
			_, err := s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: "made-up"})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: authsvc.ReasonRefreshTokenInvalid}},
		{"GetMe without a token", func(ctx context.Context) error {
			_, err := s.Client.GetMe(ctx, &authv1.GetMeRequest{})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: grpcauth.ReasonTokenMissing}},
		{"GetMe with a forged token", func(ctx context.Context) error {
			_, err := s.Client.GetMe(authsvctest.WithToken(ctx, "eyJhbGciOiJub25lIn0.e30.x"), &authv1.GetMeRequest{})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: grpcauth.ReasonTokenInvalid}},
		{"revoke nothing", func(ctx context.Context) error {
			_, err := s.Client.RevokeToken(customer, &authv1.RevokeTokenRequest{})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "token"}},
		{"revoke with an unknown scope", func(ctx context.Context) error {
			_, err := s.Client.RevokeToken(customer, &authv1.RevokeTokenRequest{Token: "x", Scope: 99})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "scope"}},
		{"rotate keys as a customer", func(ctx context.Context) error {
			_, err := s.Client.RotateSigningKey(customer, &authv1.RotateSigningKeyRequest{})
			return err
		}, expect.Failure{Code: codes.PermissionDenied, Reason: grpcauth.ReasonRoleRequired}},
		{"introspect without a service credential", func(ctx context.Context) error {
			_, err := s.Client.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: "x"})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: grpcauth.ReasonServiceRequired}},
		{"watch from a made-up cursor", func(ctx context.Context) error {
			stream, err := s.ServiceClient.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{Cursor: "made-up"})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "cursor"}},
		{"register over the address limit", func(ctx context.Context) error {
			var err error
			for i := range 5 {
				if _, err = s.Client.Register(ctx, &authv1.RegisterRequest{Email: fmt.Sprintf("many%d@example.com", i), Password: authsvctest.Password}); err != nil {
					return err
				}
			}
			return err
		}, expect.Failure{Code: codes.ResourceExhausted, Reason: authsvc.ReasonLimitExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect.Details(t, "", tt.call(t.Context()), tt.want)
		})
	}
}
