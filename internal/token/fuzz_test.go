package token_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// The fuzz targets here are run as regression tests by plain `go test` (the
// f.Add seeds plus testdata/fuzz/<target>/*) and explored with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 60s ./internal/token/
//
// testdata/fuzz holds the seeds below as files, so that the committed
// corpus is visible and keeps its cases even if this code changes; rewrite
// it with
//
//	go test -run '^TestWriteFuzzSeeds$' ./internal/token/ -update-fuzz-seeds
var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the seed files under testdata/fuzz")

// fuzzKey is the key every fuzz target signs with. It is derived from a
// fixed seed so that tokens in the committed corpus verify in every run.
func fuzzKey(name string) token.SigningKey {
	seed := sha256.Sum256([]byte("tokencart fuzz key " + name))
	return token.SigningKey{ID: "fuzz-" + name, Private: ed25519.NewKeyFromSeed(seed[:])}
}

// fuzzClaims are valid claims with a fixed jti, so that Sign is
// deterministic (Ed25519 signatures are).
func fuzzClaims() token.Claims {
	c := validClaims()
	c.TokenID = "fuzz-token-id-0001"
	return c
}

// fuzzLeeway is the leeway newVerifier configures.
const fuzzLeeway = 30 * time.Second

// sentinels are the errors every Verify and KeyID error must wrap.
var sentinels = []error{
	token.ErrMalformed, token.ErrTooLarge, token.ErrUnknownKey, token.ErrSignature,
	token.ErrExpired, token.ErrNotYetValid, token.ErrClaims,
}

func wrapsSentinel(err error) bool { return sentinelOf(err) != nil }

// sentinelOf returns the first of sentinels that err wraps, or nil.
func sentinelOf(err error) error {
	if i := slices.IndexFunc(sentinels, func(s error) bool { return errors.Is(err, s) }); i >= 0 {
		return sentinels[i]
	}
	return nil
}

// clone returns m with k set to v, or deleted when v is nil.
func clone(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

type verifySeed struct {
	name string
	raw  string
}

// verifySeeds returns the tokens signed by key that the verifier accepts,
// and the forgery shapes of TestVerifyRefusesForgeries plus a few more, all
// deterministic.
func verifySeeds(t testing.TB, key, other token.SigningKey) (signed []verifySeed, forged []verifySeed) {
	t.Helper()
	sign := func(name string, mutate func(*token.Claims)) {
		c := fuzzClaims()
		mutate(&c)
		raw, err := token.Sign(key, c)
		if err != nil {
			t.Fatal(err)
		}
		signed = append(signed, verifySeed{name, raw})
	}
	sign("valid", func(*token.Claims) {})
	sign("valid-admin", func(c *token.Claims) { c.Roles = []string{token.RoleAdmin, token.RoleCustomer} })
	sign("valid-no-roles", func(c *token.Claims) { c.Roles = nil })
	sign("valid-two-audiences", func(c *token.Claims) { c.Audience = []string{"other", testAudience} })
	sign("valid-within-leeway", func(c *token.Claims) {
		c.IssuedAt, c.Expiry = testNow.Add(-2*time.Hour), testNow.Add(-20*time.Second)
	})

	good := fuzzClaims()
	hdr := map[string]any{"alg": "EdDSA", "typ": token.Type, "kid": key.ID}
	pl := payload(good)
	valid := signed[0].raw
	parts := strings.Split(valid, ".")
	hsInput := b64(clone(hdr, "alg", "HS256")) + "." + b64(pl)
	mac := hmac.New(sha256.New, key.Public())
	mac.Write([]byte(hsInput))
	flipped := []byte(parts[1])
	flipped[10] ^= 0x01

	forged = []verifySeed{
		{"alg-none", b64(clone(hdr, "alg", "none")) + "." + b64(pl) + "."},
		{"hs256-public-key", hsInput + "." + b64(mac.Sum(nil))},
		{"rs256-header", craft(key.Private, clone(hdr, "alg", "RS256"), pl)},
		{"unknown-kid", craft(other.Private, clone(hdr, "kid", other.ID), pl)},
		{"missing-kid", craft(key.Private, clone(hdr, "kid", nil), pl)},
		{"kid-path", craft(key.Private, clone(hdr, "kid", "../../etc/passwd"), pl)},
		{"other-keys-signature", craft(other.Private, hdr, pl)},
		{"wrong-typ", craft(key.Private, clone(hdr, "typ", "JWT"), pl)},
		{"jku-header", craft(key.Private, clone(hdr, "jku", "https://evil.test/jwks"), pl)},
		{"crit-header", craft(key.Private, clone(hdr, "crit", []string{"exp"}), pl)},
		{"b64-false-header", craft(key.Private, clone(hdr, "b64", false), pl)},
		{"wrong-iss", craft(key.Private, hdr, clone(pl, "iss", "https://evil.test"))},
		{"empty-aud", craft(key.Private, hdr, clone(pl, "aud", []string{}))},
		{"aud-string", craft(key.Private, hdr, clone(pl, "aud", testAudience))},
		{"missing-exp", craft(key.Private, hdr, clone(pl, "exp", nil))},
		{"expired", craft(key.Private, hdr, clone(pl, "exp", testNow.Add(-31*time.Second).Unix()))},
		{"nbf-future", craft(key.Private, hdr, clone(pl, "nbf", testNow.Add(2*time.Minute).Unix()))},
		{"payload-bit-flipped", parts[0] + "." + string(flipped) + "." + parts[2]},
		{"signature-truncated", parts[0] + "." + parts[1] + "." + parts[2][:20]},
		// Other spellings of the valid token (see TestVerifyRefusesOtherSpellings).
		{"signature-unused-bits", parts[0] + "." + parts[1] + "." + setLowBit(t, parts[2])},
		{"newline-in-signature", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:]},
		{"two-segments", parts[0] + "." + parts[1]},
		{"four-segments", valid + ".x"},
		{"json-serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"empty", ""},
		{"just-dots", ".."},
		{"over-max-size", valid + strings.Repeat("A", token.MaxSize+1-len(valid))},
	}
	return signed, forged
}

func FuzzVerify(f *testing.F) {
	key, other := fuzzKey("a"), fuzzKey("b")
	v := newVerifier(f, key)
	signed, forged := verifySeeds(f, key, other)
	ours := map[string]bool{}
	for _, s := range signed {
		ours[s.raw] = true
		f.Add(s.raw)
	}
	for _, s := range forged {
		f.Add(s.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(raw)
		if err == nil && !ours[raw] {
			// Ed25519 cannot be forged by a fuzzer, so this is a
			// different encoding of a token we signed (or worse).
			t.Fatalf("Verify accepted %q, which is not byte-identical to a token we signed (claims %+v)", raw, c)
		}
		if err != nil && !wrapsSentinel(err) {
			t.Fatalf("Verify error %v wraps none of the package's sentinel errors", err)
		}
		if len(raw) > token.MaxSize && !errors.Is(err, token.ErrTooLarge) {
			t.Fatalf("Verify of %d bytes = %v, want ErrTooLarge before any parsing", len(raw), err)
		}
		// KeyID makes Verify's header checks: it must not pass what
		// Verify refuses for its header, nor refuse what Verify accepts.
		kid, kerr := token.KeyID(raw)
		switch {
		case kerr != nil && !wrapsSentinel(kerr):
			t.Fatalf("KeyID error %v wraps none of the package's sentinel errors", kerr)
		case kerr != nil && err == nil:
			t.Fatalf("KeyID refused (%v) a token Verify accepted", kerr)
		case kerr == nil && err == nil && kid != c.KeyID:
			t.Fatalf("KeyID = %q, Verify's claims say %q", kid, c.KeyID)
		case kerr != nil && !errors.Is(err, sentinelOf(kerr)):
			t.Fatalf("KeyID refused with %v but Verify with %v", kerr, err)
		}
	})
}

// FuzzVerifyClaims signs whatever header and payload the fuzzer makes with
// our key, reaching the claim checks that FuzzVerify's mutations (which
// break the signature) cannot. Property: a token we signed verifies only if
// its header is exactly ours and its claims meet every requirement.
func FuzzVerifyClaims(f *testing.F) {
	key := fuzzKey("a")
	v := newVerifier(f, key)
	for _, s := range claimsSeeds(key) {
		f.Add(s.header, s.payload)
	}
	f.Fuzz(func(t *testing.T, hdr, pl []byte) {
		raw := craft(key.Private, hdr, pl)
		c, err := v.Verify(raw)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("Verify error %v wraps none of the package's sentinel errors", err)
			}
			return
		}
		var h map[string]any
		if err := json.Unmarshal(hdr, &h); err != nil {
			t.Fatalf("Verify accepted a header that is not a JSON object: %q", hdr)
		}
		want := map[string]any{"alg": "EdDSA", "kid": key.ID, "typ": token.Type}
		if len(h) != len(want) {
			t.Fatalf("Verify accepted header %q, want exactly alg, kid and typ", hdr)
		}
		for k, v := range want {
			if h[k] != v {
				t.Fatalf("Verify accepted header %q: %s is %v, want %v", hdr, k, h[k], v)
			}
		}
		horizon := testNow.Add(fuzzLeeway)
		switch {
		case c.KeyID != key.ID:
			t.Fatalf("KeyID %q, want %q", c.KeyID, key.ID)
		case c.Issuer != testIssuer:
			t.Fatalf("accepted issuer %q (payload %q)", c.Issuer, pl)
		case !slices.Contains(c.Audience, testAudience):
			t.Fatalf("accepted audience %q (payload %q)", c.Audience, pl)
		case c.Subject == "" || c.TokenID == "":
			t.Fatalf("accepted empty sub or jti (payload %q)", pl)
		case c.Expiry.IsZero() || c.Expiry.Add(fuzzLeeway).Before(testNow):
			t.Fatalf("accepted exp %v at %v (payload %q)", c.Expiry, testNow, pl)
		case c.IssuedAt.IsZero() || c.IssuedAt.After(horizon):
			t.Fatalf("accepted iat %v at %v (payload %q)", c.IssuedAt, testNow, pl)
		case c.NotBefore.After(horizon):
			t.Fatalf("accepted nbf %v at %v (payload %q)", c.NotBefore, testNow, pl)
		}
		// The verified claims are what the payload says (encoding/json
		// matching, as the verifier's library uses).
		var p struct {
			Sub string      `json:"sub"`
			Jti string      `json:"jti"`
			Exp json.Number `json:"exp"`
		}
		if err := json.Unmarshal(pl, &p); err != nil {
			t.Fatalf("Verify accepted a payload encoding/json refuses (%v): %q", err, pl)
		}
		if p.Sub != c.Subject || p.Jti != c.TokenID {
			t.Fatalf("claims sub %q jti %q, payload %q", c.Subject, c.TokenID, pl)
		}
		if exp, err := p.Exp.Float64(); err != nil || int64(exp) != c.Expiry.Unix() {
			t.Fatalf("claims exp %v, payload %q", c.Expiry.Unix(), pl)
		}
	})
}

type claimsSeed struct {
	name            string
	header, payload []byte
}

func claimsSeeds(key token.SigningKey) []claimsSeed {
	hdr := map[string]any{"alg": "EdDSA", "typ": token.Type, "kid": key.ID}
	pl := payload(fuzzClaims())
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	goodHdr := js(hdr)
	return []claimsSeed{
		{"valid", goodHdr, js(pl)},
		{"valid-no-nbf", goodHdr, js(clone(pl, "nbf", nil))},
		{"valid-aud-string", goodHdr, js(clone(pl, "aud", testAudience))},
		{"wrong-iss", goodHdr, js(clone(pl, "iss", "https://evil.test"))},
		{"aud-other", goodHdr, js(clone(pl, "aud", []string{"other"}))},
		{"missing-exp", goodHdr, js(clone(pl, "exp", nil))},
		{"missing-client-id", goodHdr, js(clone(pl, "client_id", nil))},
		{"typ-jwt", js(clone(hdr, "typ", "JWT")), js(pl)},
		{"exp-float", goodHdr, []byte(strings.Replace(string(js(pl)), `"exp":`, `"exp":1e300,"x":`, 1))},
		{"nbf-huge", goodHdr, js(clone(pl, "nbf", 9.3e18))},
		{"iat-future", goodHdr, js(clone(pl, "iat", testNow.Add(time.Hour).Unix()))},
		{"case-folded-iss", goodHdr, []byte(strings.Replace(string(js(pl)), `"iss":`, `"ISS":"https://evil.test","iss":`, 1))},
		{"duplicate-iss", goodHdr, []byte(strings.Replace(string(js(pl)), `"iss":`, `"iss":"https://evil.test","iss":`, 1))},
		{"not-object", goodHdr, []byte(`[]`)},
		{"header-duplicate-alg", []byte(`{"alg":"none","alg":"EdDSA","kid":"` + key.ID + `","typ":"at+jwt"}`), js(pl)},
		{"header-upper-alg", []byte(`{"ALG":"none","alg":"EdDSA","kid":"` + key.ID + `","typ":"at+jwt"}`), js(pl)},
		{"header-b64-false", js(clone(hdr, "b64", false)), js(pl)},
		{"header-zip", js(clone(hdr, "zip", "DEF")), js(pl)},
	}
}

// TestWriteFuzzSeeds writes the seeds of the fuzz targets to testdata/fuzz
// when run with -update-fuzz-seeds, and otherwise checks the files there
// are in the corpus format.
func TestWriteFuzzSeeds(t *testing.T) {
	key, other := fuzzKey("a"), fuzzKey("b")
	signed, forged := verifySeeds(t, key, other)
	files := map[string]string{}
	for _, s := range append(signed, forged...) {
		files[filepath.Join("FuzzVerify", "seed-"+s.name)] = expect.FuzzSeed(s.raw)
	}
	for _, s := range claimsSeeds(key) {
		files[filepath.Join("FuzzVerifyClaims", "seed-"+s.name)] = expect.FuzzSeed(s.header, s.payload)
	}
	for _, s := range keySetSeeds(t) {
		files[filepath.Join("FuzzParseKeySet", "seed-"+s.name)] = expect.FuzzSeed(s.doc)
	}
	expect.FuzzSeeds(t, files, *updateFuzzSeeds)
}

type keySetSeed struct {
	name string
	doc  []byte
}

func keySetSeeds(t testing.TB) []keySetSeed {
	t.Helper()
	a, b := fuzzKey("a"), fuzzKey("b")
	doc := func(keys ...jose.JSONWebKey) []byte {
		d, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	two, err := json.Marshal(token.NewKeySet(mapOf(a, b)))
	if err != nil {
		t.Fatal(err)
	}
	return []keySetSeed{
		{"two-keys", two},
		{"bare-key", doc(jose.JSONWebKey{Key: a.Public(), KeyID: a.ID})},
		{"empty", []byte(`{"keys":[]}`)},
		{"null", []byte(`null`)},
		{"private-key", doc(jose.JSONWebKey{Key: a.Private, KeyID: "a", Algorithm: "EdDSA"})},
		{"symmetric-key", doc(jose.JSONWebKey{Key: []byte("0123456789abcdef"), KeyID: "a", Algorithm: "HS256"})},
		{"no-kid", doc(jose.JSONWebKey{Key: a.Public(), Algorithm: "EdDSA"})},
		{"wrong-alg", doc(jose.JSONWebKey{Key: a.Public(), KeyID: "a", Algorithm: "ES256"})},
		{"wrong-use", doc(jose.JSONWebKey{Key: a.Public(), KeyID: "a", Use: "enc"})},
		{"duplicate-kid", doc(jose.JSONWebKey{Key: a.Public(), KeyID: "a"}, jose.JSONWebKey{Key: b.Public(), KeyID: "a"})},
		{"x25519", []byte(`{"keys":[{"kty":"OKP","crv":"X25519","kid":"a","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}]}`)},
		{"short-x", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`)},
		{"x5c", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","x5c":["AAAA"]}]}`)},
		{"escaped-kid", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"\u003c\ud800","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)},
	}
}

func FuzzParseKeySet(f *testing.F) {
	for _, s := range keySetSeeds(f) {
		f.Add(s.doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, err := token.ParseKeySet(doc)
		if err != nil {
			return
		}
		if len(doc) > token.MaxKeySetSize {
			t.Fatalf("accepted a %d-byte document", len(doc))
		}
		ids := set.KeyIDs()
		if len(ids) != set.Len() {
			t.Fatalf("KeyIDs %q but Len %d", ids, set.Len())
		}
		for i, kid := range ids {
			if kid == "" || (i > 0 && ids[i-1] >= kid) {
				t.Fatalf("key ids %q: empty, unsorted or repeated", ids)
			}
			k, ok := set.Key(kid)
			if !ok || len(k) != ed25519.PublicKeySize {
				t.Fatalf("key %q: %d bytes (found %v), want an Ed25519 public key", kid, len(k), ok)
			}
		}
		out, err := json.Marshal(set)
		if err != nil {
			t.Fatalf("marshal accepted set: %v", err)
		}
		again, err := token.ParseKeySet(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		if got := again.KeyIDs(); !slices.Equal(got, ids) {
			t.Fatalf("round trip: key ids %q, want %q", got, ids)
		}
		for _, kid := range ids {
			k1, _ := set.Key(kid)
			k2, _ := again.Key(kid)
			if !k1.Equal(k2) {
				t.Fatalf("round trip changed key %q", kid)
			}
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("marshalling is not stable:\n%s\n%s", out, out2)
		}
	})
}
