package secret_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/secret"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	for name, enc := range map[string]*base64.Encoding{
		"std": base64.StdEncoding, "raw std": base64.RawStdEncoding, "url": base64.URLEncoding, "raw url": base64.RawURLEncoding,
	} {
		got, err := secret.Decode(" "+enc.EncodeToString(key)+"\n", 32)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: Decode = %x, %v; want the key", name, got, err)
		}
	}
	if _, err := secret.DecodeAtLeast(base64.StdEncoding.EncodeToString(append(key, key[:8]...)), 32); err != nil {
		t.Errorf("DecodeAtLeast(40 random bytes, 32): %v", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name, value string
	}{
		{"not base64", "not base64 at all!"},
		{"too short", b64(random[:31])},
		{"too long", b64(append(random, 1))},
		{"all zero", b64(make([]byte, 32))},
		{"one repeated byte", b64(bytes.Repeat([]byte{0xa5}, 32))},
		{"repeated 4-byte pattern", b64(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 8))},
		{"repeated 8-byte pattern", b64(bytes.Repeat(random[:8], 4))},
		{"a password", b64([]byte("correct horse battery staple!!!!"))},
		{"hex text", b64([]byte(strings.Repeat("0123456789abcdef", 2)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := secret.Decode(tt.value, 32)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
	if _, err := secret.DecodeAtLeast(b64(random[:16]), 32); err == nil {
		t.Error("DecodeAtLeast accepted 16 bytes for at least 32")
	}
}

// TestRandomKeysPass checks that the refusals above never hit real keys.
func TestRandomKeysPass(t *testing.T) {
	t.Parallel()
	for range 10000 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		if err := secret.CheckRandom(b); err != nil {
			t.Fatalf("a random key was refused: %v", err)
		}
	}
}
