// Package interop_test proves tokencart's tokens and documents with
// implementations other than its own: each test runs a program under
// node/ against real services on real ports.
package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// nodeWithJose returns the node command, skipping the test when Node.js or
// the npm packages (make node) are missing, except under CI=true, where
// that fails it.
func nodeWithJose(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: CI must run the independent token checks (make tools installs them)", what)
		}
		t.Skipf("skipping: %s; install Node.js and run make node", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not on PATH")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "jose", "package.json")); err != nil {
		missing("interop/node/node_modules/jose not installed")
	}
	return node
}

// joseResult is what verify-authsvc.mjs prints.
type joseResult struct {
	OK      bool           `json:"ok"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Header  map[string]any `json:"header"`
	Claims  map[string]any `json:"claims"`
}

// verifyWithJose runs verify-authsvc.mjs on raw: discovery from issuer,
// then jose's createRemoteJWKSet and jwtVerify.
func verifyWithJose(t *testing.T, node, issuer, audience, raw string) joseResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "verify-authsvc.mjs", issuer, audience)
	cmd.Dir = "node"
	cmd.Stdin = strings.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		t.Fatalf("node verify-authsvc.mjs: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var r joseResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node verify-authsvc.mjs printed %q: %v\nstderr: %s", out, err, stderr.String())
	}
	if r.OK != (err == nil) {
		t.Fatalf("node verify-authsvc.mjs: ok %v but exit %v", r.OK, err)
	}
	return r
}

// tamper flips one bit of the payload's middle character, keeping the
// encoding canonical, so that only the signature can tell.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}

// TestJoseVerifiesAuthsvcTokens: the jose npm package, given only authsvc's
// issuer URL, discovers the JWKS and accepts a fresh access token as an
// RFC 9068 access token (issuer, audience, typ at+jwt, EdDSA), and refuses
// a tampered token, a token of a key that rotation has withdrawn from the
// JWKS, and a token for another audience.
func TestJoseVerifiesAuthsvcTokens(t *testing.T) {
	node := nodeWithJose(t)
	clk := &clock{}
	s := authsvctest.Start(t, authsvctest.Options{Discoverable: true, Configure: func(c *authsvc.Config) {
		c.Now = clk.Now
		c.KeyRotationInterval = 6 * time.Hour
	}})
	ctx := t.Context()
	_, old := s.NewCustomer(t)
	oldKid, err := token.KeyID(old)
	if err != nil {
		t.Fatal(err)
	}

	// Rotate, and wait until the new key signs.
	rot, err := s.Client.RotateSigningKey(authsvctest.WithToken(ctx, s.AdminToken(t)), &authv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	var fresh string
	var user *authv1.User
	expect.Eventually(t, 10*time.Second, "the new key to sign", func() bool {
		user, fresh = s.NewCustomer(t)
		kid, _ := token.KeyID(fresh)
		return kid == rot.GetKeyId()
	})
	// Past every token of the old key: rotation withdraws it from the JWKS.
	clk.Advance(s.Config.TokenLifetime + token.MaxLeeway + time.Minute)
	expect.Eventually(t, 10*time.Second, "the old key to leave the JWKS", func() bool {
		_, published := s.KeySet(t).Key(oldKid)
		return !published
	})

	tests := []struct {
		name     string
		raw      string
		audience string
		wantCode string // "" for accepted
	}{
		{"fresh access token", fresh, s.Config.Audience, ""},
		{"tampered payload", tamper(fresh), s.Config.Audience, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"},
		{"key withdrawn from the JWKS", old, s.Config.Audience, "ERR_JWKS_NO_MATCHING_KEY"},
		{"another audience", fresh, "another-service", "ERR_JWT_CLAIM_VALIDATION_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := verifyWithJose(t, node, s.Config.Issuer, tt.audience, tt.raw)
			if tt.wantCode != "" {
				if r.OK || r.Code != tt.wantCode {
					t.Errorf("jose: ok %v, code %q (%s); want refused with %s", r.OK, r.Code, r.Message, tt.wantCode)
				}
				return
			}
			if !r.OK {
				t.Fatalf("jose refused a fresh token: %s %s", r.Code, r.Message)
			}
			if r.Header["typ"] != "at+jwt" || r.Header["alg"] != "EdDSA" || r.Header["kid"] != rot.GetKeyId() {
				t.Errorf("header %v", r.Header)
			}
			want := map[string]any{"iss": s.Config.Issuer, "sub": user.GetId(), "client_id": s.Config.ClientID}
			for k, v := range want {
				if r.Claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, r.Claims[k], v)
				}
			}
			// A single audience is a string (RFC 7519, section 4.1.3).
			if aud, _ := r.Claims["aud"].([]any); r.Claims["aud"] != s.Config.Audience && !slices.Contains(aud, any(s.Config.Audience)) {
				t.Errorf("aud %v lacks %s", r.Claims["aud"], s.Config.Audience)
			}
		})
	}
}
