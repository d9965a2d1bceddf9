// Package secret decodes the secrets an operator configures (the
// key-encryption key, the cart key, service credentials) and refuses the
// ones that cannot have come from a random source: an all-zero key, one
// repeated byte, a short repeated pattern, or text. Such a key decodes and
// "works", so without this check it would silently protect nothing.
//
// Error messages never contain the secret.
package secret

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// generateCommand is the command the messages suggest for a new secret.
const generateCommand = "head -c 32 /dev/urandom | base64"

// encodings are the base64 spellings Decode accepts.
var encodings = []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}

// Decode decodes s, base64 in the standard or URL alphabet, padded or not,
// surrounded by any white space, and checks that it is exactly size bytes
// that look random (CheckRandom).
func Decode(s string, size int) ([]byte, error) {
	b, err := decode(s)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("must be base64 of exactly %d bytes, got %d bytes (generate one with `%s`)", size, len(b), generateCommand)
	}
	return b, CheckRandom(b)
}

// DecodeAtLeast is Decode for secrets of min bytes or more.
func DecodeAtLeast(s string, min int) ([]byte, error) {
	b, err := decode(s)
	if err != nil {
		return nil, err
	}
	if len(b) < min {
		return nil, fmt.Errorf("must be base64 of at least %d bytes, got %d bytes (generate one with `%s`)", min, len(b), generateCommand)
	}
	return b, CheckRandom(b)
}

func decode(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range encodings {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("is not base64 (generate one with `%s`)", generateCommand)
}

// minRandomLen is the shortest key CheckRandom judges; a shorter one is
// refused as too short to be a key at all.
const minRandomLen = 16

// errNotRandom is what CheckRandom reports, with the reason.
var errNotRandom = errors.New("does not look random")

// CheckRandom refuses key material that a random source would produce with
// negligible probability (below 2^-40 for 32 random bytes in every case):
//   - fewer than half its bytes distinct (up to 128): all-zero and one
//     repeated byte, and any short repeated pattern;
//   - printable ASCII only: a password or a phrase, base64-encoded, rather
//     than random bytes.
func CheckRandom(b []byte) error {
	if len(b) < minRandomLen {
		return fmt.Errorf("%w: %d bytes is too short for a key (generate one with `%s`)", errNotRandom, len(b), generateCommand)
	}
	var seen [256]bool
	distinct, text := 0, true
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
		if c < 0x20 || c > 0x7e {
			text = false
		}
	}
	if distinct < min(len(b)/2, 128) {
		return fmt.Errorf("%w: only %d distinct byte values in %d bytes, as in an all-zero or repeated key (generate one with `%s`)",
			errNotRandom, distinct, len(b), generateCommand)
	}
	if text {
		return fmt.Errorf("%w: every byte is printable text, as in an encoded password (generate one with `%s`)", errNotRandom, generateCommand)
	}
	return nil
}
