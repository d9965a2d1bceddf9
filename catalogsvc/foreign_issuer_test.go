package catalogsvc_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/oidc/oidctest"
	"github.com/tokencart/tokencart/internal/tlsconfig/tlsconfigtest"
	"github.com/tokencart/tokencart/internal/token"
)

// nodeDir holds the npm package whose jose plays the foreign issuer.
var nodeDir = filepath.Join("..", "interop", "node")

// requireNode returns the node binary, or skips the test when Node.js or
// the jose package (make node) is missing; under CI=true it fails instead.
func requireNode(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node (Node.js) is not on PATH"
	default:
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "jose", "package.json")); err != nil {
			missing = "interop/node/node_modules has no jose: run make node"
		}
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s", missing)
		}
		t.Skipf("skipping the jose interoperability test: %s", missing)
	}
	return bin
}

// nodeIssuer is interop/node/foreign-issuer.mjs running: an OpenID Connect
// issuer whose keys, JWKS and tokens are jose's.
type nodeIssuer struct {
	url string

	mu  sync.Mutex // guards in and out: one request, one answer
	in  io.Writer
	out *bufio.Scanner
}

func startNodeIssuer(t *testing.T, bin string, tls tlsconfigtest.KeyPair) *nodeIssuer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "foreign-issuer.mjs", "--cert", tls.CertFile, "--key", tls.KeyFile)
	cmd.Dir = nodeDir
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close() // the program exits when stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("foreign-issuer.mjs: %v", err)
			}
		case <-time.After(testTimeout):
			cancel()
			t.Errorf("foreign-issuer.mjs did not exit when its stdin closed; killed: %v", <-done)
		}
		cancel()
	})
	n := &nodeIssuer{in: in, out: bufio.NewScanner(outPipe)}
	n.out.Buffer(make([]byte, 64<<10), 64<<10)
	var hello struct {
		Issuer string `json:"issuer"`
	}
	if !n.out.Scan() {
		t.Fatalf("foreign-issuer.mjs printed no issuer: %v", n.out.Err())
	}
	if err := json.Unmarshal(n.out.Bytes(), &hello); err != nil || !strings.HasPrefix(hello.Issuer, "https://127.0.0.1:") {
		t.Fatalf("foreign-issuer.mjs: first line %q (%v), want {\"issuer\": \"https://127.0.0.1:PORT\"}", n.out.Text(), err)
	}
	n.url = hello.Issuer
	return n
}

// mint asks jose (or node:crypto, for what jose refuses to make) for a
// token of the given kind with claims.
func (n *nodeIssuer) mint(t *testing.T, kind string, claims map[string]any) string {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	req, err := json.Marshal(map[string]any{"kind": kind, "claims": claims})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.in.Write(append(req, '\n')); err != nil {
		t.Fatal(err)
	}
	if !n.out.Scan() {
		t.Fatalf("foreign-issuer.mjs: no answer: %v", n.out.Err())
	}
	var ans struct{ Token, Error string }
	if err := json.Unmarshal(n.out.Bytes(), &ans); err != nil || ans.Token == "" {
		t.Fatalf("foreign-issuer.mjs: %q (%v %s)", n.out.Text(), err, ans.Error)
	}
	return ans.Token
}

// tamper flips one bit in the middle of raw's signature.
func tamper(t *testing.T, raw string) string {
	t.Helper()
	dot := strings.LastIndex(raw, ".")
	sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x10
	return raw[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// TestForeignIssuerJose: catalogsvc, trusting a second issuer whose keys,
// JWKS (over HTTPS) and tokens come from the jose npm package, serves
// GetCart to its ES256 and RS256 tokens and refuses, as UNAUTHENTICATED,
// tokens of an untrusted issuer, for another audience, expired, unsigned,
// HMAC-signed with the public key, signed with an RSA-1024 key, or
// tampered with; its admin claim maps to the admin role; and its user
// "alice" and authsvc's user "alice" have two carts.
func TestForeignIssuerJose(t *testing.T) {
	t.Parallel()
	bin := requireNode(t)
	ca := tlsconfigtest.NewCA(t, "foreign-issuer-ca")
	idp := startNodeIssuer(t, bin, ca.Server(t))
	c := newCluster(t, modes[0])
	r := c.start(func(cfg *catalogsvc.Config) {
		cfg.Auth.TrustedIssuers = oidctest.ConfigFile(t, grpcauthtest.Audience, "shop-admin", idp.url)
		cfg.Auth.TrustedIssuersCA = ca.File
	})
	claims := func(sub string, extra ...any) map[string]any {
		m := map[string]any{"sub": sub, "aud": grpcauthtest.Audience}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	es256 := idp.mint(t, "ES256", claims("alice"))
	expect.Eventually(t, testTimeout, "the foreign issuer's keys loaded", func() bool {
		return c.shopperWithToken(r, es256).get().err == nil
	})

	now := time.Now()
	tests := []struct {
		name string
		raw  string
		want codes.Code
	}{
		{"ES256", es256, codes.OK},
		{"RS256", idp.mint(t, "RS256", claims("alice")), codes.OK},
		{"untrusted issuer", idp.mint(t, "ES256", claims("alice", "iss", "https://127.0.0.1:1")), codes.Unauthenticated},
		{"wrong audience", idp.mint(t, "ES256", claims("alice", "aud", "another-service")), codes.Unauthenticated},
		{"expired", idp.mint(t, "ES256", claims("alice", "iat", now.Add(-time.Hour).Unix(), "exp", now.Add(-10*time.Minute).Unix())), codes.Unauthenticated},
		{"alg none", idp.mint(t, "none", claims("alice")), codes.Unauthenticated},
		{"HS256 keyed by the public key", idp.mint(t, "HS256-public-key", claims("alice")), codes.Unauthenticated},
		{"RSA-1024 key", idp.mint(t, "RS256-1024", claims("alice")), codes.Unauthenticated},
		{"tampered ES256", tamper(t, es256), codes.Unauthenticated},
		{"tampered RS256", tamper(t, idp.mint(t, "RS256", claims("alice"))), codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect.MustCode(t, "GetCart", c.shopperWithToken(r, tt.raw).get().err, tt.want)
		})
	}

	t.Run("admin mapping", func(t *testing.T) {
		p := &catalogv1.Product{Id: "foreign-admin-test", Name: "Foreign admin test", Category: "test",
			Price: &catalogv1.Money{CurrencyCode: "EUR", Units: 1}}
		for _, tt := range []struct {
			name  string
			roles []string
			want  codes.Code
		}{
			{"admin role", []string{"offline_access", "shop-admin"}, codes.OK},
			{"other roles", []string{"offline_access", "shop-admin-2"}, codes.PermissionDenied},
		} {
			raw := idp.mint(t, "RS256", claims("boss", "realm_access", map[string]any{"roles": tt.roles}))
			_, err := r.catalog.UpsertProduct(client.WithToken(testContext(t), raw), &catalogv1.UpsertProductRequest{Product: p})
			expect.MustCode(t, tt.name, err, tt.want)
		}
	})

	t.Run("same sub, two issuers, two carts", func(t *testing.T) {
		local := c.shopperWithToken(r, c.fake.Mint(t, "carol", token.RoleCustomer))
		foreign := c.shopperWithToken(r, idp.mint(t, "ES256", claims("carol")))
		checkCart(t, r, local.add(espresso, 2).must(t), 1, line{espresso, 2})
		checkCart(t, r, foreign.get().must(t), 0)
		checkCart(t, r, foreign.add(press, 1).must(t), 1, line{press, 1})
		checkCart(t, r, local.get().must(t), 1, line{espresso, 2})
		checkCart(t, r, foreign.get().must(t), 1, line{press, 1})
	})
}
