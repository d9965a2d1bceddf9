package authsvc_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/internal/token"
)

// forgery is a token that must not be accepted, and why.
type forgery struct{ name, raw string }

// forger makes tokens like a good one of the server's, signed with the
// server's own signing key (or not) and wrong in one way each.
type forger struct {
	key     token.SigningKey
	hdr     map[string]any
	payload map[string]any
	good    string
}

func newForger(t testing.TB, s *authsvctest.Server, good string) *forger {
	t.Helper()
	key, err := s.Service.CurrentSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	f := &forger{key: key, good: good}
	for i, dst := range []*map[string]any{&f.hdr, &f.payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	if f.hdr["kid"] != key.ID {
		t.Fatalf("good token's kid %v is not the signing key %s", f.hdr["kid"], key.ID)
	}
	return f
}

// set returns a copy of m with k set to v, or deleted when v is nil.
func set(m map[string]any, k string, v any) map[string]any {
	out := maps.Clone(m)
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// sign signs hdr.payload with the server's key.
func (f *forger) sign(hdr, payload map[string]any) string {
	return sign(f.key.Private, hdr, payload)
}

// signRaw signs hand-written header and payload JSON with the server's key.
func (f *forger) signRaw(hdr, payload []byte) string {
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(f.key.Private, []byte(input)))
}

// sized returns a token of exactly n bytes signed by the server's key and
// valid in every other way: the payload carries a padding claim, and the
// header a few spaces, to reach every length.
func (f *forger) sized(t testing.TB, n int) string {
	t.Helper()
	payload, _ := json.Marshal(f.payload)
	for spaces := range 3 {
		hdr, _ := json.Marshal(f.hdr)
		hdr = append([]byte("{"+strings.Repeat(" ", spaces)), hdr[1:]...)
		for pad := max(0, (n-400)*3/4-len(payload)); pad < n; pad++ {
			p := append(payload[:len(payload)-1:len(payload)-1], []byte(`,"pad":"`+strings.Repeat("x", pad)+`"}`)...)
			raw := f.signRaw(hdr, p)
			if len(raw) == n {
				return raw
			}
			if len(raw) > n {
				break
			}
		}
	}
	t.Fatalf("no token of %d bytes", n)
	return ""
}

// forgeries returns tokens that must all be refused: each is the good token
// wrong in one way, and signed with the server's own key unless the
// signature is what is wrong.
func (f *forger) forgeries(t testing.TB) []forgery {
	t.Helper()
	now := time.Now()
	parts := strings.Split(f.good, ".")
	hdr, payload := f.hdr, f.payload

	hsInput := b64e(set(hdr, "alg", "HS256")) + "." + parts[1]
	mac := hmac.New(sha256.New, f.key.Public())
	mac.Write([]byte(hsInput))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsInput := b64e(set(hdr, "alg", "RS256")) + "." + parts[1]
	digest := sha256.Sum256([]byte(rsInput))
	rsSig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	esInput := b64e(set(hdr, "alg", "ES256")) + "." + parts[1]
	digest = sha256.Sum256([]byte(esInput))
	r, s, err := ecdsa.Sign(rand.Reader, ecKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	esSig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)

	other, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}

	// One bit flipped in the subject: the JSON stays valid, the claims
	// name another (plausible) subject, and only the signature tells.
	flipped, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(flipped), `"sub":"`) + len(`"sub":"`) + 2
	flipped[i] ^= 0x01
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 0x80

	return []forgery{
		{"alg none, no signature", b64e(set(hdr, "alg", "none")) + "." + parts[1] + "."},
		{"alg none, original signature", b64e(set(hdr, "alg", "none")) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with our public key", hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))},
		{"RS256", rsInput + "." + base64.RawURLEncoding.EncodeToString(rsSig)},
		{"ES256", esInput + "." + base64.RawURLEncoding.EncodeToString(esSig)},
		{"unknown kid", sign(other.Private, set(hdr, "kid", other.ID), payload)},
		{"our kid, another key", sign(other.Private, hdr, payload)},
		{"missing kid", f.sign(set(hdr, "kid", nil), payload)},
		{"empty kid", f.sign(set(hdr, "kid", ""), payload)},
		{"kid with a path", f.sign(set(hdr, "kid", "../../../../etc/passwd"), payload)},
		{"kid with a path to our kid", f.sign(set(hdr, "kid", "./"+f.key.ID), payload)},
		{"kid with SQL", f.sign(set(hdr, "kid", "' OR '1'='1' --"), payload)},
		{"kid with SQL naming our kid", f.sign(set(hdr, "kid", f.key.ID+"'; DROP TABLE signing_keys; --"), payload)},
		{"wrong iss", f.sign(hdr, set(payload, "iss", "https://evil.example"))},
		{"missing iss", f.sign(hdr, set(payload, "iss", nil))},
		{"wrong aud", f.sign(hdr, set(payload, "aud", []string{"other"}))},
		{"aud []", f.sign(hdr, set(payload, "aud", []string{}))},
		{"missing aud", f.sign(hdr, set(payload, "aud", nil))},
		{"typ JWT", f.sign(set(hdr, "typ", "JWT"), payload)},
		{"missing typ", f.sign(set(hdr, "typ", nil), payload)},
		{"expired past the leeway", f.sign(hdr, set(set(payload, "iat", now.Add(-2*time.Hour).Unix()), "exp", now.Add(-token.MaxLeeway-30*time.Second).Unix()))},
		{"nbf in the future", f.sign(hdr, set(payload, "nbf", now.Add(5*time.Minute).Unix()))},
		{"iat in the future", f.sign(hdr, set(payload, "iat", now.Add(5*time.Minute).Unix()))},
		{"missing exp", f.sign(hdr, set(payload, "exp", nil))},
		{"missing jti", f.sign(hdr, set(payload, "jti", nil))},
		{"one payload bit flipped", parts[0] + "." + base64.RawURLEncoding.EncodeToString(flipped) + "." + parts[2]},
		{"one signature bit flipped", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)},
		{"roles raised, signature kept", parts[0] + "." + b64e(set(payload, "roles", []string{token.RoleAdmin})) + "." + parts[2]},
		{"jku header", f.sign(set(hdr, "jku", "https://evil.example/jwks.json"), payload)},
		{"x5u header", f.sign(set(hdr, "x5u", "https://evil.example/cert.pem"), payload)},
		{"jwk header", f.sign(set(hdr, "jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(other.Public())}), payload)},
		{"crit header", f.sign(set(set(hdr, "crit", []string{"exp"}), "exp", now.Add(time.Hour).Unix()), payload)},
		{"zip header", f.sign(set(hdr, "zip", "DEF"), payload)},
		{"trailing newline", f.good + "\n"},
		{"padded base64", f.good + "="},
		{"two tokens joined", f.good + "." + f.good},
		{"8 KiB + 1", f.sized(t, token.MaxSize+1)},
		// The largest a token check can see: the transport refuses
		// metadata over serve.MaxHeaderListSize (internal/serve's
		// TestHeaderListLimit sends 1 MiB).
		{"about 12 KiB", parts[0] + "." + strings.Repeat("A", 12<<10) + "." + parts[2]},
		{"empty", ""},
	}
}
