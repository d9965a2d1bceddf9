package oidc

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokencart/tokencart/internal/token"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// maxKeyIDLen bounds a kid, in a key set and in token headers.
const maxKeyIDLen = 128

// Algorithms is the signature algorithm allow-list: never none, never HMAC
// (whose "key" would be the issuer's public key, known to everyone).
var Algorithms = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}

// verificationKey is one accepted public key and the one algorithm it
// verifies.
type verificationKey struct {
	pub any // ed25519.PublicKey, *ecdsa.PublicKey (P-256) or *rsa.PublicKey
	alg jose.SignatureAlgorithm
}

// keySet is an issuer's accepted keys by kid; immutable.
type keySet struct {
	keys    map[string]verificationKey
	skipped int // keys of the document not accepted
}

// parseKeySet reads a JWKS document with the bounds of token.ParseKeySet
// (size, number of keys). Keys this service does not accept (encryption
// keys, private keys, other types or curves, RSA under MinRSABits, an alg
// that does not match the key, a missing or repeated kid) are skipped and
// counted, not errors: identity providers publish keys for other uses
// beside their signing keys.
func parseKeySet(data []byte) (*keySet, error) {
	if len(data) > token.MaxKeySetSize {
		return nil, fmt.Errorf("key set: document of %d bytes exceeds %d", len(data), token.MaxKeySetSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("key set: no keys member")
	}
	if len(doc.Keys) > token.MaxKeys {
		return nil, fmt.Errorf("key set: %d keys exceed %d", len(doc.Keys), token.MaxKeys)
	}
	set := &keySet{keys: make(map[string]verificationKey, len(doc.Keys))}
	dup := map[string]bool{}
	for _, rawKey := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rawKey); err != nil {
			set.skipped++
			continue
		}
		alg, ok := algorithmOf(k)
		if !ok || k.KeyID == "" || len(k.KeyID) > maxKeyIDLen || dup[k.KeyID] {
			set.skipped++
			continue
		}
		if _, seen := set.keys[k.KeyID]; seen {
			// Two keys under one kid: trust neither.
			delete(set.keys, k.KeyID)
			dup[k.KeyID] = true
			set.skipped += 2
			continue
		}
		set.keys[k.KeyID] = verificationKey{pub: k.Key, alg: alg}
	}
	return set, nil
}

// algorithmOf returns the one algorithm k may verify, if k is an accepted
// public signature key.
func algorithmOf(k jose.JSONWebKey) (jose.SignatureAlgorithm, bool) {
	if !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
		return "", false
	}
	var alg jose.SignatureAlgorithm
	switch pub := k.Key.(type) {
	case ed25519.PublicKey:
		alg = jose.EdDSA
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", false
		}
		alg = jose.ES256
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return "", false
		}
		alg = jose.RS256
	default:
		return "", false
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return "", false
	}
	return alg, true
}

// key returns the key with id kid; a nil set has none.
func (s *keySet) key(kid string) (verificationKey, bool) {
	if s == nil {
		return verificationKey{}, false
	}
	k, ok := s.keys[kid]
	return k, ok
}
