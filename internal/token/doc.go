// Package token is tokencart's access-token format: Ed25519-signed JWTs
// (RFC 7519, typ "at+jwt" as in RFC 9068), the key sets that verify them,
// published as JWKS documents (RFC 7517), and the one verifier that every
// service uses.
//
// The verifier is deliberately narrow: EdDSA only, a bounded size checked
// before any parsing, a protected header of exactly alg, kid and typ (no
// jku, x5u, jwk, crit or zip), the key chosen by kid from the key set only,
// exact issuer, our audience, a required exp and jti, and nbf/iat checked
// with a small leeway. Revocation is not this package's concern: callers
// check Claims.TokenID against their revocation set.
//
// There is no gRPC here.
package token
