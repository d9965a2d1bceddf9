package authsvc

import (
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/rpcerr"
)

// Reasons (google.rpc.ErrorInfo, domain rpcerr.Domain) of authsvc's errors,
// besides rpcerr's and grpcauth's.
const (
	// ReasonEmailTaken: an account with the email exists.
	ReasonEmailTaken = "EMAIL_TAKEN"
	// ReasonBadCredentials: the email or the password is wrong.
	ReasonBadCredentials = "BAD_CREDENTIALS"
	// ReasonRefreshTokenInvalid: the refresh token is invalid, expired or
	// revoked: log in again.
	ReasonRefreshTokenInvalid = "REFRESH_TOKEN_INVALID"
	// ReasonRefreshRace: a concurrent request spent the refresh token; use
	// the tokens it received, do not retry.
	ReasonRefreshRace = "REFRESH_TOKEN_RACE"
	// ReasonNotTokenOwner: only the token's owner or an admin may do this.
	ReasonNotTokenOwner = "NOT_TOKEN_OWNER"
	// ReasonAccountNotFound: the account no longer exists.
	ReasonAccountNotFound = "ACCOUNT_NOT_FOUND"
	// ReasonSigningKeyUnavailable: no signing key can be used now; retry.
	ReasonSigningKeyUnavailable = "SIGNING_KEY_UNAVAILABLE"
	// ReasonPasswordChecksBusy: every password-hashing slot is taken;
	// RetryInfo says when to try again.
	ReasonPasswordChecksBusy = "PASSWORD_CHECKS_BUSY"
	// ReasonLoginThrottled: too many failed logins for the account or
	// address; RetryInfo says when to try again.
	ReasonLoginThrottled = "LOGIN_THROTTLED"
	// ReasonLimitExceeded: a call over one of the service's limits;
	// metadata "limit" names it and RetryInfo says when it admits calls
	// again.
	ReasonLimitExceeded = "LIMIT_EXCEEDED"
	// ReasonTooManyStreams: too many open revocation streams.
	ReasonTooManyStreams = "TOO_MANY_STREAMS"
)

// What clients are told, declared once. Anything else a handler fails with
// becomes rpcerr.ErrInternal (or rpcerr.ErrStoreUnavailable), its detail
// logged.
var (
	errInvalidEmail       = rpcerr.Invalid("email", "must be an address like name@example.com, at most 254 bytes")
	errInvalidPassword    = rpcerr.Invalid("password", "must be 8 to 256 characters")
	errEmailTaken         = rpcerr.Errorf(codes.AlreadyExists, ReasonEmailTaken, "an account with this email already exists")
	errBadCredentials     = rpcerr.Errorf(codes.Unauthenticated, ReasonBadCredentials, "invalid email or password")
	errBadRefreshToken    = rpcerr.Errorf(codes.Unauthenticated, ReasonRefreshTokenInvalid, "invalid, expired or revoked refresh token")
	errRefreshRace        = rpcerr.Errorf(codes.Aborted, ReasonRefreshRace, "refresh token was just spent by a concurrent request: use the tokens that request received, do not retry with this one")
	errNotYours           = rpcerr.Errorf(codes.PermissionDenied, ReasonNotTokenOwner, "only the token's owner or an admin may revoke it")
	errNotOurToken        = rpcerr.Invalid("token", "is not a valid access token issued by this service")
	errMissingToken       = rpcerr.Invalid("token", "is required")
	errUnauthenticated    = rpcerr.Errorf(codes.Unauthenticated, grpcauth.ReasonTokenMissing, "authentication required")
	errBadCursor          = rpcerr.Invalid("cursor", "malformed or unknown")
	errAccountGone        = rpcerr.Errorf(codes.NotFound, ReasonAccountNotFound, "account not found")
	errUnavailableSigning = rpcerr.Errorf(codes.Unavailable, ReasonSigningKeyUnavailable, "no signing key available; retry shortly")
	errHashBusy           = rpcerr.Exhausted(ReasonPasswordChecksBusy, "too many password checks in progress; retry shortly", time.Second)
	errTokenScopeRefresh  = rpcerr.Invalid("scope", "REVOCATION_SCOPE_TOKEN revokes one access token: give an access token, or revoke the refresh token's session")
	errUnknownScope       = rpcerr.Invalid("scope", "unknown revocation scope")
	// errTooManyStreams refuses a WatchRevocations stream over the bounds.
	errTooManyStreams = rpcerr.Exhausted(ReasonTooManyStreams,
		"too many open revocation streams on this connection, or in all; close one first", 5*time.Second)
)

// limited is the refusal of a call over one of the service's limits:
// ResourceExhausted naming the limit, with a RetryInfo saying when the
// window that refused it closes.
func limited(what string, retryAfter time.Duration) error {
	return rpcerr.Exhausted(ReasonLimitExceeded, what+"; retry later", retryAfter).With("limit", what)
}

// errorRules map the package's own errors to what clients are told; every
// declared status above passes as it is, and errors are mapped once, at
// the RPC edge (package rpcerr).
var errorRules = []rpcerr.Rule{
	{Target: errHasherBusy, Status: errHashBusy},
	{Target: errNoSigningKey, Status: errUnavailableSigning, Log: true},
}

func newErrorMapper(log *slog.Logger) *rpcerr.Mapper { return rpcerr.New(log, errorRules...) }
