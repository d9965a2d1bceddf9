package token_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/token"
)

// TestVerifyRefusesOtherSpellings: only the exact text we signed verifies.
// The base64 decoder under jwt.ParseSigned skips line breaks and ignores
// the unused low bits of a segment's last character, and the signature
// covers the re-encoded bytes, so before Verify checked the encoding each
// token had hundreds of accepted spellings (found while writing
// FuzzVerify's "byte-identical to what we signed" property).
func TestVerifyRefusesOtherSpellings(t *testing.T) {
	key := fuzzKey("a")
	v := newVerifier(t, key)
	raw, err := token.Sign(key, fuzzClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("Verify(signed token): %v", err)
	}
	parts := strings.Split(raw, ".")
	tests := []struct {
		name, raw string
	}{
		{"unused bits set in the payload", parts[0] + "." + setLowBit(t, parts[1]) + "." + parts[2]},
		{"unused bits set in the signature", parts[0] + "." + parts[1] + "." + setLowBit(t, parts[2])},
		{"newline in the signature", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:]},
		{"CRLF in the payload", parts[0] + "." + parts[1][:10] + "\r\n" + parts[1][10:] + "." + parts[2]},
		{"padded signature", raw + "=="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(raw)},
		{"leading space", " " + raw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.raw == raw {
				t.Fatal("variant equals the signed token")
			}
			if _, err := v.Verify(tt.raw); !errors.Is(err, token.ErrMalformed) {
				t.Errorf("Verify = %v, want ErrMalformed", err)
			}
			if _, err := token.KeyID(tt.raw); !errors.Is(err, token.ErrMalformed) {
				t.Errorf("KeyID = %v, want ErrMalformed", err)
			}
		})
	}
}

// setLowBit sets the lowest bit of the value of seg's last base64url
// character, an unused bit when len(seg)%4 is 2 or 3 and seg is canonical.
func setLowBit(t testing.TB, seg string) string {
	t.Helper()
	if n := len(seg) % 4; n != 2 && n != 3 {
		t.Fatalf("segment of %d characters has no unused bits", len(seg))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	if i < 0 || i&1 != 0 {
		t.Fatalf("segment %q does not end in a canonical character", seg)
	}
	return seg[:len(seg)-1] + string(alphabet[i|1])
}
