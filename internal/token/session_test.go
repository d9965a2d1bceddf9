package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

func TestSessionTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 11, 52, 3, 456_789_000, time.UTC)
	sid := token.NewSessionID(at)
	if got, ok := token.SessionTime(sid); !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("SessionTime(NewSessionID(%v)) = %v, %v; want %v", at, got, ok, at.Truncate(time.Millisecond))
	}
	if other := token.NewSessionID(at); other == sid {
		t.Fatalf("two session ids created at one instant are equal: %s", sid)
	}
	for _, bad := range []string{
		"",
		"short",
		token.NewID() + "A",        // 23 characters
		strings.Repeat("!", 22),    // not base64url
		sid[:21] + "B",             // non-canonical last character
		"AAAAAAAAAAAAAAAAAAAAAA==", // padded
	} {
		if got, ok := token.SessionTime(bad); ok {
			t.Errorf("SessionTime(%q) = %v, true; want false", bad, got)
		}
	}
}

func TestSessionIDClaim(t *testing.T) {
	t.Parallel()
	key, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := token.Claims{
		Issuer: "iss", Subject: "sub", Audience: []string{"aud"}, TokenID: token.NewID(), ClientID: "c",
		IssuedAt: now, Expiry: now.Add(time.Hour),
	}
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer: "iss", Audience: "aud", Keys: token.NewKeySet(map[string]ed25519.PublicKey{key.ID: key.Public()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"", token.NewSessionID(now)} {
		c := base
		c.SessionID = sid
		raw, err := token.Sign(key, c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.SessionID != sid {
			t.Errorf("sid %q came back as %q", sid, got.SessionID)
		}
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		if written := strings.Contains(string(payload), `"sid"`); written != (sid != "") {
			t.Errorf("sid %q: payload %s", sid, payload)
		}
	}
	c := base
	c.SessionID = strings.Repeat("s", 65)
	if _, err := token.Sign(key, c); err == nil {
		t.Errorf("Sign accepted a 65-character sid")
	}
}
