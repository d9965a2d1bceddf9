package authsvc

import (
	"context"
	"errors"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/retryinfo"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// What clients are told, declared once. Anything else a handler fails with
// becomes errInternal, its detail logged.
var (
	errInvalidEmail       = status.Error(codes.InvalidArgument, "email must be an address like name@example.com, at most 254 bytes")
	errInvalidPassword    = status.Error(codes.InvalidArgument, "password must be 8 to 256 characters")
	errEmailTaken         = status.Error(codes.AlreadyExists, "an account with this email already exists")
	errBadCredentials     = status.Error(codes.Unauthenticated, "invalid email or password")
	errBadRefreshToken    = status.Error(codes.Unauthenticated, "invalid, expired or revoked refresh token")
	errRefreshRace        = status.Error(codes.Aborted, "refresh token was just spent by a concurrent request: use the tokens that request received, do not retry with this one")
	errNotYours           = status.Error(codes.PermissionDenied, "only the token's owner or an admin may revoke it")
	errNotOurToken        = status.Error(codes.InvalidArgument, "token is not a valid access token issued by this service")
	errMissingToken       = status.Error(codes.InvalidArgument, "token is required")
	errUnauthenticated    = status.Error(codes.Unauthenticated, "authentication required")
	errBadCursor          = status.Error(codes.InvalidArgument, "malformed or unknown cursor")
	errAccountGone        = status.Error(codes.NotFound, "account not found")
	errShuttingDown       = status.Error(codes.Unavailable, "server shutting down; reconnect")
	errUnavailableSigning = status.Error(codes.Unavailable, "no signing key available; retry shortly")
	errHashBusy           = retryinfo.Error(codes.ResourceExhausted, "too many password checks in progress; retry shortly", time.Second)
	errTokenScopeRefresh  = status.Error(codes.InvalidArgument, "scope REVOCATION_SCOPE_TOKEN revokes one access token: give an access token, or revoke the refresh token's session")
	errUnknownScope       = status.Error(codes.InvalidArgument, "unknown revocation scope")
	errStoreUnavailable   = status.Error(codes.Unavailable, "database unavailable; retry shortly")
	errInternal           = status.Error(codes.Internal, "internal error")
)

// limited is the refusal of a call over one of the service's limits:
// ResourceExhausted naming the limit, with a RetryInfo saying when the
// window that refused it closes.
func limited(what string, retryAfter time.Duration) error {
	return retryinfo.Error(codes.ResourceExhausted, what+"; retry later", retryAfter)
}

// rpcError turns what a handler failed with into the status the client
// gets. It is the one place where errors meet gRPC codes: declared status
// errors pass as they are, a few sentinels map to their codes, and anything
// else is Internal, with the detail logged once.
func (s *Service) rpcError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if any(se) != any(err) {
			// A declared status under context: the client gets the
			// status alone, and the context goes to the log.
			s.logInternal(ctx, err)
		}
		return se.GRPCStatus().Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, errHasherBusy):
		return errHashBusy
	case errors.Is(err, errNoSigningKey):
		s.logInternal(ctx, err)
		return errUnavailableSigning
	case sqldb.Transient(err):
		s.logInternal(ctx, err)
		return errStoreUnavailable
	}
	s.logInternal(ctx, err)
	return errInternal
}

// logInternal records err with the call: on the logging interceptor's line
// for the finished call when there is one, on its own line otherwise.
func (s *Service) logInternal(ctx context.Context, err error) {
	if logging.ExtractFields(ctx) != nil {
		logging.AddFields(ctx, logging.Fields{"error.detail", err.Error()})
		return
	}
	s.log.ErrorContext(ctx, "request failed", "error", err)
}
