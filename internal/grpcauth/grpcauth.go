// Package grpcauth connects token verification to gRPC: it reads the bearer
// token from request metadata, asks an Authenticator whether it is good, and
// puts the verified claims into the request's context, as the AuthFunc of
// go-grpc-middleware v2's auth interceptor. Handlers read the caller from
// the context with ClaimsFrom; nothing else identifies a caller.
//
// A service replicated behind authsvc checks tokens with a Validator: Dial
// builds one from a Config (which RegisterFlags binds to flags), and its Run
// keeps the background state fresh. The Config's Mode picks the check:
//
//   - ModeLocal: the signature and claims are checked in process against
//     authsvc's published keys (fetched at start, refreshed periodically
//     and, rate-limited, when an unknown kid shows up); verified tokens are
//     remembered in a bounded, lock-free cache (keyed by the token's
//     SHA-256, never past its exp, dropped when its key is withdrawn); and
//     every call, cached or not, is checked against the replica's
//     revocation set, fed by authsvc's WatchRevocations stream and resumed
//     from its cursor with exponential backoff. When that feed has been
//     silent longer than the staleness bound, tokens are either
//     introspected at authsvc or refused with Unavailable (StalePolicy):
//     never accepted unchecked.
//   - ModeRemote: every token is introspected at authsvc, with a short,
//     bounded cache.
//
// Beside authsvc, a Config may trust other OpenID Connect issuers
// (TrustedIssuers, see package oidc): a token whose iss names one of them
// is checked against that issuer's published keys (and, if configured, its
// introspection endpoint) instead, cached until exp, with its subject
// namespaced by issuer. No revocation feed reaches the service from such an
// issuer: its tokens' lifetime, or introspection, bounds a revocation.
//
// In every mode a Guard limits the token checks of client addresses that
// keep failing them. On authsvc's side, Services admits the calls of such
// services to the revocation feed and to introspection, which present a
// ServiceCredential or a client certificate.
//
// Package grpcauthtest serves the authsvc side of this for tests.
package grpcauth

import (
	"context"
	"errors"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/clientaddr"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/token"
)

// Authenticator decides whether a raw access token is acceptable now:
// signature, claims and revocation. An error means it is not; an error
// carrying a gRPC status (such as Unavailable, when the authenticator cannot
// check revocation) is passed to the client as is, any other becomes
// Unauthenticated.
type Authenticator interface {
	Authenticate(ctx context.Context, raw string) (token.Claims, error)
}

// Reasons (google.rpc.ErrorInfo, domain rpcerr.Domain) of the errors of
// authentication.
const (
	// ReasonTokenMissing: the call carries no bearer token.
	ReasonTokenMissing = "TOKEN_MISSING"
	// ReasonTokenMalformed: the authorization metadata is not one
	// "Bearer <token>" value of a sane size.
	ReasonTokenMalformed = "TOKEN_MALFORMED"
	// ReasonTokenInvalid: the token is not valid now (expired, revoked,
	// or not one of ours): refresh it or log in again.
	ReasonTokenInvalid = "TOKEN_INVALID"
	// ReasonRoleRequired: the caller lacks a role; metadata "role" names it.
	ReasonRoleRequired = "ROLE_REQUIRED"
	// ReasonAuthUnavailable: the token cannot be checked now; retry.
	ReasonAuthUnavailable = "AUTH_UNAVAILABLE"
	// ReasonServiceRequired: the method is for services only.
	ReasonServiceRequired = "SERVICE_CREDENTIAL_REQUIRED"
	// ReasonAuthFailuresLimited: too many failed authentications from the
	// caller's address; RetryInfo says when to try again.
	ReasonAuthFailuresLimited = "AUTH_FAILURES_LIMITED"
)

// Errors the interceptor returns, declared once.
var (
	errMissingToken = rpcerr.Errorf(codes.Unauthenticated, ReasonTokenMissing, "missing bearer token")
	errBadHeader    = rpcerr.Errorf(codes.Unauthenticated, ReasonTokenMalformed, "malformed authorization metadata: want one \"Bearer <token>\" value")
	errTooLarge     = rpcerr.Errorf(codes.Unauthenticated, ReasonTokenMalformed, "bearer token too large")
	errInvalidToken = rpcerr.Errorf(codes.Unauthenticated, ReasonTokenInvalid, "invalid or revoked token")
	errNoClaims     = rpcerr.Errorf(codes.Unauthenticated, ReasonTokenMissing, "authentication required")
)

type claimsKey struct{}

// WithClaims returns ctx carrying c.
func WithClaims(ctx context.Context, c token.Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the verified claims of the caller, if the request was
// authenticated.
func ClaimsFrom(ctx context.Context) (token.Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(token.Claims)
	return c, ok
}

// BearerToken returns the token of the request's single authorization
// metadata value "Bearer <token>". The scheme is matched without regard to
// case (RFC 7235); a missing, repeated or malformed value is Unauthenticated.
func BearerToken(ctx context.Context) (string, error) {
	// Only this key: FromIncomingContext would copy every entry.
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	switch {
	case len(vals) == 0:
		return "", errMissingToken
	case len(vals) > 1:
		return "", errBadHeader
	}
	scheme, raw, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" || strings.ContainsAny(raw, " \t") {
		return "", errBadHeader
	}
	if len(raw) > token.MaxSize {
		return "", errTooLarge
	}
	return raw, nil
}

// AuthFunc returns the go-grpc-middleware auth function that authenticates
// every request it sees with a.
func AuthFunc(a Authenticator) auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		raw, err := BearerToken(ctx)
		if err != nil {
			return nil, err
		}
		c, err := a.Authenticate(ctx, raw)
		if err != nil {
			if _, ok := status.FromError(err); ok && !errors.Is(err, context.Canceled) {
				return nil, err
			}
			return nil, errInvalidToken
		}
		return WithClaims(ctx, c), nil
	}
}

// RequireRole returns PermissionDenied unless the caller's claims carry
// role, and Unauthenticated when the request carries no claims at all.
func RequireRole(ctx context.Context, role string) error {
	c, ok := ClaimsFrom(ctx)
	if !ok {
		return errNoClaims
	}
	if !c.HasRole(role) {
		return rpcerr.Errorf(codes.PermissionDenied, ReasonRoleRequired, "the %s role is required", role).With("role", role)
	}
	return nil
}

// CallerKey returns a function naming the caller of a call, for per-caller
// limits: the token subject of an authenticated call, else the client
// address (see clientaddr, with trustedHops).
func CallerKey(trustedHops int) func(context.Context) string {
	return func(ctx context.Context) string {
		if c, ok := ClaimsFrom(ctx); ok {
			return "sub:" + c.Subject
		}
		return "ip:" + clientaddr.FromContext(ctx, trustedHops)
	}
}
