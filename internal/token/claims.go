package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Type is the JOSE typ header of every access token (RFC 9068, section
// 2.1). Verify also accepts its full media type, "application/at+jwt", in
// any case, as RFC 9068 section 4 requires of a resource server.
const Type = "at+jwt"

// Limits and defaults of the format.
const (
	// MaxSize is the largest token, in bytes, that Verify looks at.
	MaxSize = 8 << 10
	// MaxLeeway bounds the clock skew tolerated on exp, nbf and iat.
	MaxLeeway = 60 * time.Second
	// DefaultLeeway is the clock skew tolerated when none is configured.
	DefaultLeeway = 30 * time.Second
	// maxClientIDLen bounds the client_id claim a token may carry.
	maxClientIDLen = 255
	// DefaultLifetime is an access token's lifetime when none is configured.
	DefaultLifetime = 24 * time.Hour
)

// Role names carried in the roles claim.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
)

// Errors returned by Verify, for errors.Is. Every one of them means the
// token must not be accepted; ErrUnknownKey also tells the caller that a
// key-set refresh may help.
var (
	ErrMalformed   = errors.New("token: malformed")
	ErrTooLarge    = errors.New("token: too large")
	ErrUnknownKey  = errors.New("token: unknown key id")
	ErrSignature   = errors.New("token: bad signature")
	ErrExpired     = errors.New("token: expired")
	ErrNotYetValid = errors.New("token: not yet valid")
	ErrClaims      = errors.New("token: claims rejected")
)

// Claims is what an access token asserts, and what a verified token puts
// into a request's context.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	Roles    []string
	TokenID  string
	// ClientID is the client_id claim (RFC 9068, section 2.2): the OAuth
	// client the token was issued to. Required.
	ClientID string
	// SessionID is the sid claim: the session (one login, kept across
	// refreshes) the token was issued in. Empty in tokens that name none.
	SessionID string
	IssuedAt  time.Time
	// AuthTime is the auth_time claim: when the user last authenticated
	// (the login that started the session). Zero in tokens that carry none.
	AuthTime  time.Time
	NotBefore time.Time
	Expiry    time.Time
	// KeyID is the kid of the key that signed the token; set by Verify.
	KeyID string
}

// HasRole reports whether the claims carry role.
func (c Claims) HasRole(role string) bool {
	return slices.Contains(c.Roles, role)
}

// NewID returns a random identifier of 128 bits, base64url-encoded, for jti
// claims and key ids.
func NewID() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (c Claims) validateForSigning() error {
	switch {
	case c.Issuer == "":
		return fmt.Errorf("%w: issuer is empty", ErrClaims)
	case c.Subject == "":
		return fmt.Errorf("%w: subject is empty", ErrClaims)
	case len(c.Audience) == 0:
		return fmt.Errorf("%w: audience is empty", ErrClaims)
	case c.ClientID == "":
		return fmt.Errorf("%w: client id is empty", ErrClaims)
	case len(c.ClientID) > maxClientIDLen:
		return fmt.Errorf("%w: client id longer than %d characters", ErrClaims, maxClientIDLen)
	case len(c.TokenID) < 16:
		return fmt.Errorf("%w: token id shorter than 16 characters", ErrClaims)
	case len(c.SessionID) > maxSessionIDLen:
		return fmt.Errorf("%w: session id longer than %d characters", ErrClaims, maxSessionIDLen)
	case c.IssuedAt.IsZero() || c.Expiry.IsZero():
		return fmt.Errorf("%w: iat and exp are required", ErrClaims)
	case !c.AuthTime.IsZero() && c.AuthTime.After(c.IssuedAt):
		return fmt.Errorf("%w: auth_time is after iat", ErrClaims)
	case !c.Expiry.After(c.IssuedAt):
		return fmt.Errorf("%w: exp is not after iat", ErrClaims)
	}
	return nil
}
