package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// KeyLookup finds a verification key by key id. *KeySet implements it; a
// service that refreshes its key set implements it over the current set.
type KeyLookup interface {
	Key(kid string) (ed25519.PublicKey, bool)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer is the exact iss a token must carry.
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat; zero means
	// DefaultLeeway, and it may not exceed MaxLeeway.
	Leeway time.Duration
	// Keys selects the verification key by the token's kid.
	Keys KeyLookup
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	leeway   time.Duration
	keys     KeyLookup
	now      func() time.Time
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("verifier: issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("verifier: audience is required")
	case cfg.Keys == nil:
		return nil, errors.New("verifier: key lookup is required")
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("verifier: leeway %v outside [0, %v]", cfg.Leeway, MaxLeeway)
	}
	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience, leeway: cfg.Leeway, keys: cfg.Keys, now: cfg.Now}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// allowedHeader lists the only protected-header parameters a token may
// carry: anything else (jku, x5u, jwk, x5c, crit, zip, b64, ...) is refused
// rather than interpreted.
var allowedHeader = map[string]bool{"alg": true, "kid": true, "typ": true}

// header is the protected header, read before the library parses the token
// so that key selection depends on nothing but the kid and our key set.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Verify checks raw and returns its claims. Every error wraps one of the
// package's sentinel errors.
func (v *Verifier) Verify(raw string) (Claims, error) {
	if len(raw) > MaxSize {
		return Claims{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrTooLarge, len(raw), MaxSize)
	}
	h, err := parseHeader(raw)
	if err != nil {
		return Claims{}, err
	}
	key, ok := v.keys.Key(h.Kid)
	if !ok {
		return Claims{}, fmt.Errorf("%w: %q", ErrUnknownKey, h.Kid)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var std jwt.Claims
	var priv privateClaims
	if err := tok.Claims(key, &std, &priv); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if std.Expiry == nil || std.IssuedAt == nil || std.ID == "" || std.Subject == "" || priv.ClientID == "" {
		return Claims{}, fmt.Errorf("%w: exp, iat, jti, sub and client_id are required", ErrClaims)
	}
	if len(priv.ClientID) > maxClientIDLen {
		return Claims{}, fmt.Errorf("%w: client_id longer than %d characters", ErrClaims, maxClientIDLen)
	}
	if len(priv.SessionID) > maxSessionIDLen {
		return Claims{}, fmt.Errorf("%w: sid longer than %d characters", ErrClaims, maxSessionIDLen)
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.issuer,
		AnyAudience: jwt.Audience{v.audience},
		Time:        v.now(),
	}, v.leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return Claims{}, fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Claims{}, fmt.Errorf("%w: %w", ErrNotYetValid, err)
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	c := Claims{
		Issuer:    std.Issuer,
		Subject:   std.Subject,
		Audience:  []string(std.Audience),
		Roles:     priv.Roles,
		TokenID:   std.ID,
		ClientID:  priv.ClientID,
		SessionID: priv.SessionID,
		IssuedAt:  std.IssuedAt.Time(),
		Expiry:    std.Expiry.Time(),
		KeyID:     h.Kid,
	}
	if std.NotBefore != nil {
		c.NotBefore = std.NotBefore.Time()
	}
	if priv.AuthTime != nil {
		c.AuthTime = priv.AuthTime.Time()
	}
	return c, nil
}

// KeyID returns the kid of raw's protected header after the same header
// checks Verify makes, so a caller can decide whether a key-set refresh is
// worth it before verifying.
func KeyID(raw string) (string, error) {
	if len(raw) > MaxSize {
		return "", fmt.Errorf("%w: %d bytes exceeds %d", ErrTooLarge, len(raw), MaxSize)
	}
	h, err := parseHeader(raw)
	if err != nil {
		return "", err
	}
	return h.Kid, nil
}

func parseHeader(raw string) (header, error) {
	if strings.Count(raw, ".") != 2 {
		return header{}, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	for seg := range strings.SplitSeq(raw, ".") {
		if !canonicalBase64URL(seg) {
			return header{}, fmt.Errorf("%w: segment is not canonical unpadded base64url", ErrMalformed)
		}
	}
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return header{}, fmt.Errorf("%w: header encoding: %w", ErrMalformed, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return header{}, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	for name := range fields {
		if !allowedHeader[name] {
			return header{}, fmt.Errorf("%w: header parameter %q not allowed", ErrMalformed, name)
		}
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return header{}, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	switch {
	case h.Alg != string(jose.EdDSA):
		return header{}, fmt.Errorf("%w: alg %q not allowed", ErrMalformed, h.Alg)
	case !isAccessTokenType(h.Typ):
		return header{}, fmt.Errorf("%w: typ %q, want %q", ErrMalformed, h.Typ, Type)
	case h.Kid == "" || len(h.Kid) > maxKeyIDLen:
		return header{}, fmt.Errorf("%w: missing or oversized kid", ErrMalformed)
	}
	return h, nil
}

// isAccessTokenType reports whether typ names an RFC 9068 access token:
// "at+jwt", or its full media type "application/at+jwt", in any case (media
// types are case-insensitive, RFC 7515 section 4.1.9).
func isAccessTokenType(typ string) bool {
	return strings.EqualFold(typ, Type) || strings.EqualFold(typ, "application/"+Type)
}

// canonicalBase64URL reports whether seg is the one unpadded base64url
// encoding of the bytes it decodes to. The decoder behind jwt.ParseSigned
// skips '\r' and '\n' and ignores the unused low bits of the last
// character, and the signature covers the re-encoded bytes, so without
// this check one signed token would verify under many spellings, each a
// different key for anything that caches or counts tokens by their text.
func canonicalBase64URL(seg string) bool {
	var v byte
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case 'A' <= c && c <= 'Z':
			v = c - 'A'
		case 'a' <= c && c <= 'z':
			v = c - 'a' + 26
		case '0' <= c && c <= '9':
			v = c - '0' + 52
		case c == '-':
			v = 62
		case c == '_':
			v = 63
		default:
			return false
		}
	}
	switch len(seg) % 4 {
	case 1:
		return false // 6 bits cannot end a byte
	case 2:
		return v&0x0f == 0 // the last character carries 2 data bits
	case 3:
		return v&0x03 == 0 // the last character carries 4 data bits
	}
	return true
}
