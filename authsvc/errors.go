package authsvc

import (
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/retryinfo"
	"github.com/tokencart/tokencart/internal/rpcerr"
)

// What clients are told, declared once. Anything else a handler fails with
// becomes rpcerr.ErrInternal (or rpcerr.ErrStoreUnavailable), its detail
// logged.
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
	errUnavailableSigning = status.Error(codes.Unavailable, "no signing key available; retry shortly")
	errHashBusy           = retryinfo.Error(codes.ResourceExhausted, "too many password checks in progress; retry shortly", time.Second)
	errTokenScopeRefresh  = status.Error(codes.InvalidArgument, "scope REVOCATION_SCOPE_TOKEN revokes one access token: give an access token, or revoke the refresh token's session")
	errUnknownScope       = status.Error(codes.InvalidArgument, "unknown revocation scope")
)

// limited is the refusal of a call over one of the service's limits:
// ResourceExhausted naming the limit, with a RetryInfo saying when the
// window that refused it closes.
func limited(what string, retryAfter time.Duration) error {
	return retryinfo.Error(codes.ResourceExhausted, what+"; retry later", retryAfter)
}

// errorRules map the package's own errors to what clients are told; every
// declared status above passes as it is, and errors are mapped once, at
// the RPC edge (package rpcerr).
var errorRules = []rpcerr.Rule{
	{Target: errHasherBusy, Status: errHashBusy},
	{Target: errNoSigningKey, Status: errUnavailableSigning, Log: true},
}

func newErrorMapper(log *slog.Logger) *rpcerr.Mapper { return rpcerr.New(log, errorRules...) }
