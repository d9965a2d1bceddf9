// Package cartstate seals state that a server hands to a client and gets
// back later (the request-carried cart), so the client can hold it but can
// neither read nor change it, nor use another user's.
//
// A sealed blob is
//
//	version (1 byte, 1) | key id (4) | subject tag (8) | nonce (24) | ciphertext+tag
//
// The ciphertext is XChaCha20-Poly1305 (golang.org/x/crypto) under a key
// derived from the configured 32-byte secret; its 24-byte random nonces
// cannot collide in practice however many blobs are sealed, which a 12-byte
// GCM nonce could not promise at millions of seals per key. The associated
// data is the clear header plus the owner's subject, so a blob opens only
// for the subject it was sealed for.
//
// The subject tag, HMAC-SHA256(derived key, subject) truncated to 8 bytes,
// lets Open tell "another user's blob" (the tag is not the caller's:
// ErrForeign) from "tampered" (the tag matches but authentication fails:
// ErrTampered) without revealing the subject to anyone who lacks the key.
// The tag is only a hint: a forged tag still cannot get a blob opened.
//
// The key id, derived from the secret itself, selects the key among the
// current one (which seals) and the old ones (which only open), so secrets
// can be rotated without invalidating the blobs clients hold.
package cartstate

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/tokencart/tokencart/internal/secret"
)

// Sizes of the format.
const (
	// KeySize is the size of a sealing secret.
	KeySize = 32
	// MaxSize is the largest blob Seal produces and Open reads.
	MaxSize = 64 << 10
	// Overhead is what sealing adds to the plaintext.
	Overhead = headerSize + chacha20poly1305.Overhead

	formatVersion = 1
	kidSize       = 4
	tagSize       = 8
	adSize        = 1 + kidSize + tagSize
	headerSize    = adSize + chacha20poly1305.NonceSizeX
)

// Errors of Open and Seal, for errors.Is.
var (
	ErrTooLarge   = errors.New("cart state: too large")
	ErrMalformed  = errors.New("cart state: malformed")
	ErrUnknownKey = errors.New("cart state: sealed with a key no longer accepted")
	ErrForeign    = errors.New("cart state: belongs to another user")
	ErrTampered   = errors.New("cart state: failed authentication")
)

// keyID is a key's public identifier inside blobs.
type keyID [kidSize]byte

type key struct {
	id     keyID
	aead   aeadCipher
	tagKey []byte
}

type aeadCipher interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// Sealer seals with its current key and opens with any of its keys. It is
// safe for concurrent use.
type Sealer struct {
	current *key
	byID    map[keyID]*key
}

// ParseKey decodes a cart key: base64 (standard or URL alphabet, padded or
// not) of KeySize random bytes. Keys that cannot be random (all zero, one
// repeated byte, text) are refused; see package secret.
func ParseKey(s string) ([]byte, error) {
	b, err := secret.Decode(s, KeySize)
	if err != nil {
		return nil, fmt.Errorf("cart key %w", err)
	}
	return b, nil
}

// New returns a Sealer that seals with current and also opens blobs
// sealed with any of old.
func New(current []byte, old ...[]byte) (*Sealer, error) {
	s := &Sealer{byID: map[keyID]*key{}}
	for i, secret := range append([][]byte{current}, old...) {
		k, err := deriveKey(secret)
		if err != nil {
			return nil, err
		}
		if prev, dup := s.byID[k.id]; dup {
			if subtle.ConstantTimeCompare(prev.tagKey, k.tagKey) == 1 {
				continue // the same secret twice
			}
			return nil, errors.New("cart keys: two different keys share a key id; generate another")
		}
		s.byID[k.id] = k
		if i == 0 {
			s.current = k
		}
	}
	return s, nil
}

func deriveKey(secret []byte) (*key, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("cart key must be %d bytes, got %d", KeySize, len(secret))
	}
	derive := func(info string, n int) []byte {
		b, err := hkdf.Key(sha256.New, secret, nil, "tokencart cart-state v1 "+info, n)
		if err != nil {
			panic(err) // only for n beyond 255*32, which we never ask
		}
		return b
	}
	aead, err := chacha20poly1305.NewX(derive("aead", chacha20poly1305.KeySize))
	if err != nil {
		return nil, err
	}
	k := &key{aead: aead, tagKey: derive("subject tag", sha256.Size)}
	copy(k.id[:], derive("key id", kidSize))
	return k, nil
}

func (k *key) tag(subject string) [tagSize]byte {
	m := hmac.New(sha256.New, k.tagKey)
	m.Write([]byte(subject))
	var t [tagSize]byte
	copy(t[:], m.Sum(nil))
	return t
}

// additionalData is the clear header (version, key id, tag) followed by the
// subject.
func additionalData(header []byte, subject string) []byte {
	ad := make([]byte, 0, adSize+len(subject))
	return append(append(ad, header[:adSize]...), subject...)
}

// Seal returns plaintext sealed for subject with the current key, or
// ErrTooLarge if the blob would exceed MaxSize.
func (s *Sealer) Seal(subject string, plaintext []byte) ([]byte, error) {
	if len(plaintext)+Overhead > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes of state", ErrTooLarge, len(plaintext))
	}
	k := s.current
	out := make([]byte, headerSize, headerSize+len(plaintext)+chacha20poly1305.Overhead)
	out[0] = formatVersion
	copy(out[1:], k.id[:])
	t := k.tag(subject)
	copy(out[1+kidSize:], t[:])
	nonce := out[adSize:headerSize]
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(nonce)
	return k.aead.Seal(out, nonce, plaintext, additionalData(out, subject)), nil
}

// Open returns the plaintext of blob if it was sealed for subject with one
// of the Sealer's keys, and whether that key is the current one (if not,
// the caller should reseal). Errors wrap ErrTooLarge, ErrMalformed,
// ErrUnknownKey, ErrForeign or ErrTampered.
func (s *Sealer) Open(subject string, blob []byte) (plaintext []byte, current bool, err error) {
	switch {
	case len(blob) > MaxSize:
		return nil, false, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(blob))
	case len(blob) < Overhead:
		return nil, false, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(blob))
	case blob[0] != formatVersion:
		return nil, false, fmt.Errorf("%w: unknown version %d", ErrMalformed, blob[0])
	}
	k, ok := s.byID[keyID(blob[1:1+kidSize])]
	if !ok {
		return nil, false, ErrUnknownKey
	}
	// The tag is part of the associated data, so a blob that opens was
	// sealed for subject with this very tag: the tag is computed only to
	// tell why a blob does not open (an HMAC saved on every good call).
	plaintext, err = k.aead.Open(nil, blob[adSize:headerSize], blob[headerSize:], additionalData(blob, subject))
	if err != nil {
		if t := k.tag(subject); !hmac.Equal(t[:], blob[1+kidSize:adSize]) {
			return nil, false, ErrForeign
		}
		return nil, false, ErrTampered
	}
	return plaintext, k == s.current, nil
}
