package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokencart/tokencart/internal/token"
)

func TestKeySetRoundTrip(t *testing.T) {
	a, b := newKey(t), newKey(t)
	set := token.NewKeySet(nil)
	if set.Len() != 0 {
		t.Fatal("empty set not empty")
	}
	set = token.NewKeySet(mapOf(a, b))
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), `"d"`) {
		t.Fatalf("JWKS leaks a private key: %s", doc)
	}
	got, err := token.ParseKeySet(doc)
	if err != nil {
		t.Fatalf("ParseKeySet(%s): %v", doc, err)
	}
	if got.Len() != 2 {
		t.Fatalf("got %d keys, want 2", got.Len())
	}
	for _, k := range []token.SigningKey{a, b} {
		pub, ok := got.Key(k.ID)
		if !ok || !pub.Equal(k.Public()) {
			t.Errorf("key %s did not round-trip", k.ID)
		}
	}
}

func mapOf(keys ...token.SigningKey) map[string]ed25519.PublicKey {
	m := map[string]ed25519.PublicKey{}
	for _, k := range keys {
		m[k.ID] = k.Public()
	}
	return m
}

func TestParseKeySetRejects(t *testing.T) {
	k := newKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(keys ...jose.JSONWebKey) string {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name string
		doc  string
	}{
		{"not JSON", "{"},
		{"private key", doc(jose.JSONWebKey{Key: k.Private, KeyID: "a", Algorithm: "EdDSA"})},
		{"EC key", doc(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "a", Algorithm: "ES256"})},
		{"no kid", doc(jose.JSONWebKey{Key: k.Public(), Algorithm: "EdDSA"})},
		{"wrong alg", doc(jose.JSONWebKey{Key: k.Public(), KeyID: "a", Algorithm: "ES256"})},
		{"wrong use", doc(jose.JSONWebKey{Key: k.Public(), KeyID: "a", Use: "enc"})},
		{"duplicate kid", doc(jose.JSONWebKey{Key: k.Public(), KeyID: "a"}, jose.JSONWebKey{Key: k.Public(), KeyID: "a"})},
		{"oversized", `{"keys":[],"pad":"` + strings.Repeat("x", token.MaxKeySetSize) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := token.ParseKeySet([]byte(tt.doc)); err == nil {
				t.Errorf("ParseKeySet accepted %.80s", tt.doc)
			}
		})
	}
}

// TestMaxKeysFit: a key set of MaxKeys keys with the longest kids parses,
// is far below MaxKeySetSize, and one key more is refused.
func TestMaxKeysFit(t *testing.T) {
	t.Parallel()
	pubs := map[string]ed25519.PublicKey{}
	for i := range token.MaxKeys + 1 {
		k, err := token.GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		kid := fmt.Sprintf("%03d", i) + strings.Repeat("k", 125)
		pubs[kid] = k.Public()
	}
	all, err := json.Marshal(token.NewKeySet(pubs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.ParseKeySet(all); err == nil {
		t.Errorf("a key set of %d keys was accepted", token.MaxKeys+1)
	}
	delete(pubs, fmt.Sprintf("%03d", token.MaxKeys)+strings.Repeat("k", 125))
	doc, err := json.Marshal(token.NewKeySet(pubs))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc) > token.MaxKeySetSize/4 {
		t.Errorf("%d keys take %d bytes, more than a quarter of %d", token.MaxKeys, len(doc), token.MaxKeySetSize)
	}
	if set, err := token.ParseKeySet(doc); err != nil || set.Len() != token.MaxKeys {
		t.Errorf("ParseKeySet of %d keys: %v", token.MaxKeys, err)
	}
}
