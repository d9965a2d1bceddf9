package cartstate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/catalogsvc/cartstate"
)

func newSecret(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, cartstate.KeySize)
	_, _ = rand.Read(b)
	return b
}

func newSealer(t testing.TB, current []byte, old ...[]byte) *cartstate.Sealer {
	t.Helper()
	s, err := cartstate.New(current, old...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTripAndRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := newSecret(t), newSecret(t)
	s1 := newSealer(t, k1)
	plain := []byte(`{"v":3}`)
	blob, err := s1.Seal("user-1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != len(plain)+cartstate.Overhead {
		t.Errorf("blob of %d bytes, want %d", len(blob), len(plain)+cartstate.Overhead)
	}
	if bytes.Contains(blob, plain) || bytes.Contains(blob, []byte("user-1")) {
		t.Error("blob carries plaintext or subject in the clear")
	}
	got, current, err := s1.Open("user-1", blob)
	if err != nil || !current || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v, %v", got, current, err)
	}
	again, _ := s1.Seal("user-1", plain)
	if bytes.Equal(again, blob) {
		t.Error("two seals of the same state are identical (nonce reuse?)")
	}

	// Rotation: k2 seals, k1 still opens and reports that it is old.
	s2 := newSealer(t, k2, k1)
	if got, current, err := s2.Open("user-1", blob); err != nil || current || !bytes.Equal(got, plain) {
		t.Errorf("old-key blob after rotation: %q, current=%v, %v", got, current, err)
	}
	// Once k1 is retired, its blobs are refused.
	if _, _, err := newSealer(t, k2).Open("user-1", blob); !errors.Is(err, cartstate.ErrUnknownKey) {
		t.Errorf("retired key: %v, want ErrUnknownKey", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	s := newSealer(t, newSecret(t))
	blob, err := s.Seal("alice", []byte("state"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		subject string
		blob    []byte
		want    error
	}{
		{"another user's blob", "bob", blob, cartstate.ErrForeign},
		{"subject that is a prefix", "alic", blob, cartstate.ErrForeign},
		{"empty", "alice", nil, cartstate.ErrMalformed},
		{"truncated", "alice", blob[:len(blob)-1], cartstate.ErrTampered},
		{"header only", "alice", blob[:cartstate.Overhead-1], cartstate.ErrMalformed},
		{"unknown version", "alice", append([]byte{9}, blob[1:]...), cartstate.ErrMalformed},
		{"oversized", "alice", append(bytes.Clone(blob), make([]byte, cartstate.MaxSize)...), cartstate.ErrTooLarge},
		{"other sealer's key", "alice", sealWith(t, newSealer(t, newSecret(t)), "alice"), cartstate.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Open(tt.subject, tt.blob); !errors.Is(err, tt.want) {
				t.Errorf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

func sealWith(t *testing.T, s *cartstate.Sealer, subject string) []byte {
	b, err := s.Seal(subject, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryBitFlipRefused flips each bit of a sealed blob in turn: none of
// the results may open.
func TestEveryBitFlipRefused(t *testing.T) {
	t.Parallel()
	s := newSealer(t, newSecret(t))
	blob, err := s.Seal("alice", []byte(`{"lines":[{"p":"espresso","q":2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(blob) * 8 {
		b := bytes.Clone(blob)
		b[i/8] ^= 1 << (i % 8)
		if _, _, err := s.Open("alice", b); err == nil {
			t.Fatalf("blob with bit %d flipped opened", i)
		}
	}
}

func TestSealTooLarge(t *testing.T) {
	t.Parallel()
	s := newSealer(t, newSecret(t))
	if _, err := s.Seal("a", make([]byte, cartstate.MaxSize)); !errors.Is(err, cartstate.ErrTooLarge) {
		t.Errorf("Seal of %d bytes: %v, want ErrTooLarge", cartstate.MaxSize, err)
	}
	b, err := s.Seal("a", make([]byte, cartstate.MaxSize-cartstate.Overhead))
	if err != nil || len(b) != cartstate.MaxSize {
		t.Errorf("largest state: %d bytes, %v", len(b), err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := cartstate.ParseKey(" " + enc.EncodeToString(secret) + "\n")
		if err != nil || !bytes.Equal(got, secret) {
			t.Errorf("ParseKey: %v", err)
		}
	}
	for _, bad := range []string{"", "!!!", base64.StdEncoding.EncodeToString(secret[:16]), strings.Repeat("A", 60),
		base64.StdEncoding.EncodeToString(make([]byte, cartstate.KeySize))} {
		if _, err := cartstate.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	if _, err := cartstate.New(secret[:31]); err == nil {
		t.Error("New accepted a short key")
	}
	if _, err := cartstate.New(secret, secret); err != nil {
		t.Errorf("the same key as current and old: %v", err)
	}
}

// FuzzOpen: nothing opens unless this sealer sealed it for this subject,
// and a sealed blob changed in any way (bytes flipped, cut short,
// extended) never opens, for anyone; errors are always the package's.
//
// Its corpus (testdata/fuzz/FuzzOpen) includes blobs sealed for "alice"
// with the fixed key below, which open in every run.
func FuzzOpen(f *testing.F) {
	s := newSealer(f, bytes.Repeat([]byte{7}, cartstate.KeySize))
	plain := []byte(`{"v":1}`)
	sealed, err := s.Seal("alice", plain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, 0, byte(1), 0, "alice")
	f.Add([]byte{}, 3, byte(0x80), -1, "bob")
	f.Add(sealed[:cartstate.Overhead], 10, byte(0xff), 1, "")
	f.Fuzz(func(t *testing.T, blob []byte, pos int, mask byte, cut int, subject string) {
		checkErr := func(err error) {
			t.Helper()
			if err != nil && !errors.Is(err, cartstate.ErrTooLarge) && !errors.Is(err, cartstate.ErrMalformed) &&
				!errors.Is(err, cartstate.ErrUnknownKey) && !errors.Is(err, cartstate.ErrForeign) && !errors.Is(err, cartstate.ErrTampered) {
				t.Fatalf("error %v wraps none of the package's", err)
			}
		}
		// Fuzz workers run this setup again, sealing with other nonces: a
		// corpus blob may be a real seal of ours, for alice. Anything that
		// opens must be exactly what we sealed, and only for alice.
		got, _, err := s.Open("alice", blob)
		checkErr(err)
		if err == nil && !bytes.Equal(got, plain) {
			t.Fatalf("bytes we never sealed opened: %x -> %q", blob, got)
		}
		if subject != "alice" {
			_, _, err := s.Open(subject, blob)
			checkErr(err)
			if err == nil {
				t.Fatalf("a blob opened for %q, who it was never sealed for", subject)
			}
		}

		b := bytes.Clone(sealed)
		if mask != 0 {
			b[uint(pos)%uint(len(b))] ^= mask
		}
		switch {
		case cut > 0:
			b = b[:uint(cut)%uint(len(b))]
		case cut < 0:
			b = append(b, bytes.Repeat([]byte{byte(cut)}, 1+int(uint(-cut)%64))...)
		}
		mutated := mask != 0 || cut != 0
		_, _, err = s.Open("alice", b)
		checkErr(err)
		switch {
		case mutated && err == nil:
			t.Fatalf("mutated blob opened (byte %d ^ %#x, cut %d)", uint(pos)%uint(len(sealed)), mask, cut)
		case !mutated && err != nil:
			t.Fatalf("our own blob did not open: %v", err)
		case !mutated && subject != "alice":
			if _, _, err := s.Open(subject, b); !errors.Is(err, cartstate.ErrForeign) {
				t.Fatalf("alice's blob opened for %q: %v, want ErrForeign", subject, err)
			}
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	s := newSealer(b, newSecret(b))
	blob, _ := s.Seal("user-123", []byte(`{"v":12,"t":1700000000000000,"l":[{"p":"espresso-beans-1kg","q":2},{"p":"moka-pot","q":1}]}`))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Open("user-123", blob); err != nil {
			b.Fatal(err)
		}
	}
}
