package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokencart/tokencart/internal/token"
)

// maxSubjectLen bounds sub (OpenID Connect Core: at most 255 ASCII
// characters).
const maxSubjectLen = 255

// allowedHeader lists the protected-header parameters a foreign token may
// carry. The x5t thumbprints are informative only (some providers always
// send them); anything that could name a key or change how the token is
// processed (jku, x5u, jwk, x5c, crit, zip, b64) is refused.
var allowedHeader = map[string]bool{"alg": true, "kid": true, "typ": true, "x5t": true, "x5t#S256": true}

// allowedTypes are the accepted typ values, compared without regard to case:
// none, a generic JWT, or an RFC 9068 access token.
var allowedTypes = []string{"", "jwt", "at+jwt", "application/at+jwt"}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// verify checks raw's signature against the issuer's keys and its claims,
// and maps them to token.Claims; it also returns the unqualified sub. Every
// error wraps one of token's sentinels or ErrUnavailable.
func (i *Issuer) verify(ctx context.Context, raw string) (token.Claims, string, error) {
	if len(raw) > token.MaxSize {
		return token.Claims{}, "", fmt.Errorf("%w: %d bytes exceeds %d", token.ErrTooLarge, len(raw), token.MaxSize)
	}
	h, err := parseHeader(raw)
	if err != nil {
		return token.Claims{}, "", err
	}
	if !i.Loaded() {
		return token.Claims{}, "", fmt.Errorf("%w: no key set from %s yet", ErrUnavailable, i.cfg.Issuer)
	}
	key, ok := i.keys.Load().key(h.Kid)
	if !ok && i.loop.Demand(ctx) {
		key, ok = i.keys.Load().key(h.Kid)
	}
	if !ok {
		return token.Claims{}, "", fmt.Errorf("%w: %q", token.ErrUnknownKey, h.Kid)
	}
	if string(key.alg) != h.Alg {
		return token.Claims{}, "", fmt.Errorf("%w: key %q verifies %s, token says %s", token.ErrSignature, h.Kid, key.alg, h.Alg)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{key.alg})
	if err != nil {
		return token.Claims{}, "", fmt.Errorf("%w: %w", token.ErrMalformed, err)
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key.pub, &std, &all); err != nil {
		return token.Claims{}, "", fmt.Errorf("%w: %w", token.ErrSignature, err)
	}
	now := i.now()
	switch {
	case std.Expiry == nil || std.Subject == "":
		return token.Claims{}, "", fmt.Errorf("%w: exp and sub are required", token.ErrClaims)
	case len(std.Subject) > maxSubjectLen:
		return token.Claims{}, "", fmt.Errorf("%w: sub longer than %d bytes", token.ErrClaims, maxSubjectLen)
	case std.Expiry.Time().Sub(now) > i.leeway+i.cfg.maxLifetime():
		return token.Claims{}, "", fmt.Errorf("%w: exp further ahead than max_token_lifetime %v", token.ErrClaims, i.cfg.maxLifetime())
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: i.cfg.Issuer, AnyAudience: jwt.Audience{i.cfg.Audience}, Time: now}, i.leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return token.Claims{}, "", fmt.Errorf("%w: %w", token.ErrExpired, err)
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return token.Claims{}, "", fmt.Errorf("%w: %w", token.ErrNotYetValid, err)
	case err != nil:
		return token.Claims{}, "", fmt.Errorf("%w: %w", token.ErrClaims, err)
	}
	c := token.Claims{
		Issuer:   std.Issuer,
		Subject:  i.ownerPrefix + std.Subject,
		Audience: []string(std.Audience),
		Roles:    []string{token.RoleCustomer},
		TokenID:  std.ID,
		Expiry:   std.Expiry.Time(),
		KeyID:    h.Kid,
	}
	if i.cfg.AdminClaim != "" && claimHolds(all, i.cfg.AdminClaim, i.cfg.AdminValue) {
		c.Roles = append(c.Roles, token.RoleAdmin)
	}
	if std.IssuedAt != nil {
		c.IssuedAt = std.IssuedAt.Time()
	}
	if std.NotBefore != nil {
		c.NotBefore = std.NotBefore.Time()
	}
	return c, std.Subject, nil
}

func (c IssuerConfig) maxLifetime() time.Duration { return time.Duration(c.MaxTokenLifetime) }

// parseHeader checks raw's shape and protected header before the library
// parses it: three canonical base64url segments, only allowedHeader
// parameters, an allowed alg and typ, and a kid.
func parseHeader(raw string) (header, error) {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return header{}, fmt.Errorf("%w: not a compact JWS", token.ErrMalformed)
	}
	var hb []byte
	for n, seg := range segs {
		// One token, one spelling: the decoder tolerates line breaks and
		// non-zero padding bits, which would give a signed token many
		// texts (and so many cache keys).
		b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
			return header{}, fmt.Errorf("%w: segment is not canonical unpadded base64url", token.ErrMalformed)
		}
		if n == 0 {
			hb = b
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(hb, &fields); err != nil {
		return header{}, fmt.Errorf("%w: header: %w", token.ErrMalformed, err)
	}
	for name := range fields {
		if !allowedHeader[name] {
			return header{}, fmt.Errorf("%w: header parameter %q not allowed", token.ErrMalformed, name)
		}
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return header{}, fmt.Errorf("%w: header: %w", token.ErrMalformed, err)
	}
	switch {
	case !slices.Contains(Algorithms, jose.SignatureAlgorithm(h.Alg)):
		return header{}, fmt.Errorf("%w: alg %q not allowed", token.ErrMalformed, h.Alg)
	case !slices.Contains(allowedTypes, strings.ToLower(h.Typ)):
		return header{}, fmt.Errorf("%w: typ %q not allowed", token.ErrMalformed, h.Typ)
	case h.Kid == "" || len(h.Kid) > maxKeyIDLen:
		return header{}, fmt.Errorf("%w: missing or oversized kid", token.ErrMalformed)
	}
	return h, nil
}

// claimHolds reports whether the claim at the dotted path holds want: a
// string equal to it or listing it among space-separated words (as scope
// does), or an array with it as an element.
func claimHolds(claims map[string]any, path, want string) bool {
	var v any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		v = m[part]
	}
	switch v := v.(type) {
	case string:
		return v == want || slices.Contains(strings.Fields(v), want)
	case []any:
		return slices.Contains(v, any(want))
	}
	return false
}

// IssuerOf returns the iss claim of raw without verifying anything, to
// route the token to the verifier of its issuer; "" if raw is not shaped
// like a JWT.
func IssuerOf(raw string) string {
	if len(raw) > token.MaxSize {
		return ""
	}
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}
