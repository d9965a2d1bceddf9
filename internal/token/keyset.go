package token

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// Bounds of a key set, shared by the issuer and its consumers.
const (
	// MaxKeySetSize bounds a JWKS document that ParseKeySet reads.
	MaxKeySetSize = 256 << 10
	// MaxKeys is the most keys ParseKeySet accepts in one document, and so
	// the most an issuer may publish at once. MaxKeys keys with the longest
	// kids take a small fraction of MaxKeySetSize (TestMaxKeysFit).
	MaxKeys = 64
)

// maxKeyIDLen bounds a kid, in the key set and in token headers.
const maxKeyIDLen = 128

// KeySet is an immutable set of public verification keys by key id.
type KeySet struct {
	keys map[string]ed25519.PublicKey
}

// NewKeySet returns a key set holding keys, by key id.
func NewKeySet(keys map[string]ed25519.PublicKey) *KeySet {
	return &KeySet{keys: maps.Clone(keys)}
}

// Key returns the public key with id kid.
func (ks *KeySet) Key(kid string) (ed25519.PublicKey, bool) {
	if ks == nil {
		return nil, false
	}
	k, ok := ks.keys[kid]
	return k, ok
}

// KeyIDs returns the key ids in the set, sorted.
func (ks *KeySet) KeyIDs() []string {
	if ks == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(ks.keys))
}

// Len returns the number of keys.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}

// MarshalJSON returns the set as a JWKS document, keys sorted by id.
func (ks *KeySet) MarshalJSON() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, kid := range ks.KeyIDs() {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       ks.keys[kid],
			KeyID:     kid,
			Algorithm: string(jose.EdDSA),
			Use:       "sig",
		})
	}
	return json.Marshal(set)
}

// ParseKeySet reads a JWKS document. It accepts only Ed25519 public keys
// ("kty":"OKP","crv":"Ed25519") for EdDSA signatures, each with a distinct,
// non-empty kid; a private key, any other key type, algorithm or use, a
// document over MaxKeySetSize or over MaxKeys keys is an error.
func ParseKeySet(data []byte) (*KeySet, error) {
	if len(data) > MaxKeySetSize {
		return nil, fmt.Errorf("key set: document of %d bytes exceeds %d", len(data), MaxKeySetSize)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if len(set.Keys) > MaxKeys {
		return nil, fmt.Errorf("key set: %d keys exceed %d", len(set.Keys), MaxKeys)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for i, k := range set.Keys {
		pub, ok := k.Key.(ed25519.PublicKey)
		switch {
		case !ok:
			return nil, fmt.Errorf("key set: key %d is not an Ed25519 public key", i)
		case k.KeyID == "" || len(k.KeyID) > maxKeyIDLen:
			return nil, fmt.Errorf("key set: key %d has an empty or oversized kid", i)
		case k.Algorithm != "" && k.Algorithm != string(jose.EdDSA):
			return nil, fmt.Errorf("key set: key %q has algorithm %q, want EdDSA", k.KeyID, k.Algorithm)
		case k.Use != "" && k.Use != "sig":
			return nil, fmt.Errorf("key set: key %q has use %q, want sig", k.KeyID, k.Use)
		}
		if _, dup := keys[k.KeyID]; dup {
			return nil, fmt.Errorf("key set: duplicate kid %q", k.KeyID)
		}
		keys[k.KeyID] = pub
	}
	return &KeySet{keys: keys}, nil
}
