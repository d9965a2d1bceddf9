package token_test

import (
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/token"
)

// bytesPerCall returns the bytes allocated by one call of f: the average
// over n calls, taking the lowest of three rounds. runtime.ReadMemStats is
// exact (it flushes every P's cache), so the only noise is allocations by
// other goroutines (the runtime's and the testing package's). Running with
// GOMAXPROCS=1, as testing.AllocsPerRun does, and keeping the quietest
// round stop a stray allocation of a few hundred bytes from being charged
// to f; what f allocates itself shows in every round.
func bytesPerCall(n int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f() // warm up lazily built state
	best := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			f()
		}
		runtime.ReadMemStats(&after)
		best = min(best, (after.TotalAlloc-before.TotalAlloc)/uint64(n))
	}
	return best
}

// TestVerifyAllocationsBounded shows that what a caller can make Verify
// allocate is bounded: inputs over MaxSize cost a constant couple of
// hundred bytes whatever their length (the size check comes before any
// parsing), and
// worst-case shapes within MaxSize, including ones signed with our key that
// reach the claims parser, cost at most a small multiple of MaxSize
// (measured with go1.27.3 and go-jose v4.1.9: about 14x for unsigned input,
// 28x for signed; the bounds leave room for library changes). FuzzVerify
// checks the size rule on every input; measuring bytes there would cost a
// stop-the-world per execution.
func TestVerifyAllocationsBounded(t *testing.T) {
	key := fuzzKey("a")
	v := newVerifier(t, key)
	hdr := map[string]any{"alg": "EdDSA", "typ": token.Type, "kid": key.ID}
	good := payload(fuzzClaims())
	// fill returns the largest token (at most MaxSize) whose header, or
	// payload when signed, is prefix, unit repeated, suffix.
	fill := func(prefix, unit, suffix string, signed bool) string {
		build := func(k int) string {
			body := prefix + strings.Repeat(unit, k) + suffix
			if signed {
				return craft(key.Private, hdr, []byte(body))
			}
			return b64(body) + "." + b64(good) + ".AAAA"
		}
		// Base64 turns each 3 bytes into 4 characters.
		k := (token.MaxSize - len(build(0))) * 3 / 4 / len(unit)
		for len(build(k)) > token.MaxSize {
			k--
		}
		return build(k)
	}
	// claims extends the valid payload with more members.
	claims := strings.TrimSuffix(string(mustJSON(t, good)), "}") + ","
	const (
		// Constant, whatever the input's length: the error (about 100
		// bytes with go1.27.3, up to 180 under -race). The bound leaves
		// room for runtime noise and stays five orders of magnitude
		// below the 64 MiB input, so any copy or scan of it fails.
		overSizeBound = 1024
		// What anyone can make Verify allocate: the header is parsed
		// before the signature is checked, the payload after.
		unsignedBound = 32 * token.MaxSize
		// What a token signed with our key can: its payload is parsed
		// too. Only authsvc can produce these.
		signedBound = 64 * token.MaxSize
	)
	tests := []struct {
		name     string
		raw      string
		maxBytes uint64
	}{
		{"8 KiB + 1", strings.Repeat("A", token.MaxSize+1), overSizeBound},
		{"1 MiB", strings.Repeat("A", 1<<20), overSizeBound},
		{"64 MiB", strings.Repeat("A", 64<<20), overSizeBound},
		{"header of many members", fill(`{`, `"a":0,`, `"alg":"EdDSA"}`, false), unsignedBound},
		{"header of nested arrays", fill(`{"x":`, `[`, ``, false), unsignedBound},
		{"header of nested objects", fill(`{"x":`, `{"a":`, ``, false), unsignedBound},
		{"header of escapes", fill(`{"kid":"`, `\u0041`, `"}`, false), unsignedBound},
		{"signed, many members", fill(claims, `"a":0,`, `"b":0}`, true), signedBound},
		{"signed, many roles", fill(claims+`"roles":[`, `"",`, `""]}`, true), signedBound},
		{"signed, many audiences", fill(claims+`"aud":[`, `"a",`, `"tokencart"]}`, true), signedBound},
		{"signed, escaped role", fill(claims+`"roles":["`, `\u00e9`, `"]}`, true), signedBound},
		{"signed, nested arrays", fill(claims+`"x":`, `[`, ``, true), signedBound},
		{"signed, nested objects", fill(claims+`"x":`, `{"a":`, ``, true), signedBound},
		{"signed, many empty arrays", fill(claims+`"x":[`, `[],`, `[]]}`, true), signedBound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.raw) < token.MaxSize-64 {
				t.Fatalf("filler built a %d-byte token, want close to %d", len(tt.raw), token.MaxSize)
			}
			got := bytesPerCall(100, func() { _, _ = v.Verify(tt.raw) })
			t.Logf("%d-byte input: %d bytes allocated per Verify", len(tt.raw), got)
			if got > tt.maxBytes {
				t.Errorf("Verify of a %d-byte input allocates %d bytes, want at most %d", len(tt.raw), got, tt.maxBytes)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
