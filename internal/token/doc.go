// Package token is tokencart's access-token format: Ed25519-signed JWTs
// (RFC 7519, typ "at+jwt" as in RFC 9068), the key sets that verify them,
// published as JWKS documents (RFC 7517), and the one verifier that every
// service uses.
//
// The verifier is deliberately narrow: EdDSA only, a bounded size checked
// before any parsing, a protected header of exactly alg, kid and typ (no
// jku, x5u, jwk, crit or zip), the key chosen by kid from the key set only,
// exact issuer, our audience, the claims RFC 9068 requires (exp, iat, jti,
// sub and client_id), and nbf/iat checked with a small leeway. A token
// without client_id (authsvc minted none before it followed RFC 9068) is
// refused: its holder refreshes it, which RefreshToken allows without an
// access token. Revocation is not this package's concern: callers
// check Claims.TokenID against their revocation set.
//
// There is no gRPC here.
package token
