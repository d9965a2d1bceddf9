package catalogsvc_test

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/tlsconfig/tlsconfigtest"
	"github.com/tokencart/tokencart/internal/token"
)

// randomKey returns base64 of 32 random bytes: a cart key or a service
// credential.
func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	cfg := catalogsvc.RegisterFlags(fs)
	for _, name := range []string{
		"grpc-addr", "admin-addr", "dsn", "cart-mode", "cart-key", "cart-old-keys", "auth-addr", "auth-mode",
		"issuer", "audience", "keyset-refresh", "revocation-staleness", "stale-policy", "token-cache-size",
		"introspect-cache-ttl", "catalog-refresh", "seed", "auth-tls-ca", "auth-tls-cert", "auth-tls-key",
		"auth-tls-server-name", "rate-limit", "rate-burst", "rate-limit-callers", "service-credential",
		"trusted-proxy-hops", "revocation-capacity", "auth-failures", "auth-failure-every", "trusted-issuers", "trusted-issuers-ca",
		"cart-state-encoding",
	} {
		if fs.Lookup(name) == nil {
			t.Errorf("no --%s flag", name)
		}
	}
	// The one setting without a default: the credential authsvc's service
	// methods need.
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--service-credential") {
		t.Errorf("defaults without a service credential: %v, want an error naming --service-credential", err)
	}
	cfg.Auth.ServiceCredential = randomKey()
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults with a service credential do not validate: %v", err)
	}
	if cfg.DSN != "var/catalogsvc.db" || cfg.Auth.Addr != "127.0.0.1:8081" || cfg.CartMode != "store" ||
		cfg.Auth.Mode != "local" || cfg.Auth.Issuer != grpcauth.DefaultIssuer || cfg.Auth.Audience != "tokencart" ||
		cfg.Serve.GRPCAddr != ":8082" || cfg.Serve.AdminAddr != ":9082" || string(cfg.Auth.StalePolicy) != "introspect" ||
		cfg.Auth.TLSCA != "" || cfg.RateLimit != 50 || cfg.RateBurst != 100 || cfg.RateLimitCallers != 65536 ||
		cfg.CatalogRefresh != time.Second || cfg.Auth.Leeway != token.DefaultLeeway {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	key := randomKey()
	t.Setenv("CATALOGSVC_SERVICE_CREDENTIAL", randomKey())
	t.Setenv("CATALOGSVC_CART_MODE", "request")
	t.Setenv("CATALOGSVC_CART_KEY", key)
	t.Setenv("CATALOGSVC_STALE_POLICY", "refuse")
	fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	cfg := catalogsvc.RegisterFlags(fs)
	if err := envflag.Parse(fs, catalogsvc.EnvPrefix, []string{"--dsn", "/tmp/x.db"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.CartMode != "request" || cfg.CartKey != key || cfg.DSN != "/tmp/x.db" || cfg.Auth.StalePolicy != "refuse" {
		t.Errorf("config from the environment: %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	secret, credential := randomKey(), randomKey()
	short := base64.StdEncoding.EncodeToString([]byte("too short"))
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	text := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	tests := []struct {
		name string
		args []string
	}{
		{"request mode without a key", []string{"--cart-mode=request"}},
		{"key not base64", []string{"--cart-mode=request", "--cart-key=###" + secret}},
		{"key too short", []string{"--cart-mode=request", "--cart-key=" + short}},
		{"bad old key", []string{"--cart-mode=request", "--cart-key=" + secret, "--cart-old-keys=" + secret + "," + short}},
		{"unknown cart mode", []string{"--cart-mode=memory"}},
		{"unknown cart state encoding", []string{"--cart-mode=request", "--cart-key=" + secret, "--cart-state-encoding=xml"}},
		{"unknown auth mode", []string{"--auth-mode=trust"}},
		{"unknown stale policy", []string{"--stale-policy=accept"}},
		{"negative cache", []string{"--token-cache-size=-1"}},
		{"zero staleness", []string{"--revocation-staleness=0s"}},
		{"zero refresh", []string{"--keyset-refresh=0s"}},
		{"zero catalog refresh", []string{"--catalog-refresh=0s"}},
		{"bad auth address", []string{"--auth-addr=authsvc"}},
		{"empty DSN", []string{"--dsn="}},
		{"bad listen address", []string{"--grpc-addr=nope"}},
		{"empty issuer", []string{"--issuer="}},
		{"auth client certificate without a CA", []string{"--auth-tls-cert=c.pem", "--auth-tls-key=k.pem"}},
		{"auth server name without a CA", []string{"--auth-tls-server-name=authsvc"}},
		{"auth CA file missing", []string{"--auth-tls-ca=" + t.TempDir() + "/none.pem"}},
		{"auth CA not PEM", []string{"--auth-tls-ca=" + writeFile(t, "ca.pem", "not a certificate")}},
		{"auth client certificate without its key", []string{"--auth-tls-ca=" + tlsconfigtest.NewCA(t, "ca").File, "--auth-tls-cert=c.pem"}},
		{"negative rate limit", []string{"--rate-limit=-1"}},
		{"NaN rate limit", []string{"--rate-limit=NaN"}},
		{"infinite rate limit", []string{"--rate-limit=+Inf"}},
		{"zero burst", []string{"--rate-burst=0"}},
		{"too few callers", []string{"--rate-limit-callers=8"}},
		{"all-zero cart key", []string{"--cart-mode=request", "--cart-key=" + zero}},
		{"cart key that is text", []string{"--cart-mode=request", "--cart-key=" + text}},
		{"all-zero old cart key", []string{"--cart-mode=request", "--cart-key=" + secret, "--cart-old-keys=" + zero}},
		{"no service credential", []string{"--service-credential="}},
		{"service credential too short", []string{"--service-credential=" + short}},
		{"all-zero service credential", []string{"--service-credential=" + zero}},
		{"negative proxy hops", []string{"--trusted-proxy-hops=-1"}},
		{"negative revocation capacity", []string{"--revocation-capacity=-1"}},
		{"negative failure budget", []string{"--auth-failures=-1"}},
		{"trusted issuers file missing", []string{"--trusted-issuers=" + t.TempDir() + "/none.json"}},
		{"trusted issuer over http", []string{"--trusted-issuers=" + writeFile(t, "issuers.json", `{"issuers":[{"issuer":"http://id.example","audience":"tokencart"}]}`)}},
		{"trusted issuer is authsvc", []string{"--issuer=https://authsvc.example", "--trusted-issuers=" + writeFile(t, "self.json", `{"issuers":[{"issuer":"https://authsvc.example","audience":"tokencart"}]}`)}},
		{"trusted issuers CA without issuers", []string{"--trusted-issuers-ca=" + tlsconfigtest.NewCA(t, "ca").File}},
		{"trusted issuers CA not PEM", []string{"--trusted-issuers=" + writeFile(t, "ok.json", `{"issuers":[{"issuer":"https://id.example","audience":"tokencart"}]}`), "--trusted-issuers-ca=" + writeFile(t, "ca2.pem", "not a certificate")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
			cfg := catalogsvc.RegisterFlags(fs)
			if err := fs.Parse(append([]string{"--service-credential=" + credential}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if err == nil {
				t.Fatal("invalid configuration accepted")
			}
			// The message names the flag to fix.
			last := tt.args[len(tt.args)-1]
			if name, _, _ := strings.Cut(last, "="); !strings.Contains(err.Error(), name) {
				t.Errorf("error does not name %s: %v", name, err)
			}
			for _, key := range []string{secret, short, zero, text, credential} {
				if strings.Contains(err.Error(), key) {
					t.Errorf("error message leaks a key: %v", err)
				}
			}
		})
	}
	fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	cfg := catalogsvc.RegisterFlags(fs)
	if err := fs.Parse([]string{"--service-credential=" + credential, "--cart-mode=request", "--cart-key=" + secret, "--cart-old-keys= " + randomKey() + ","}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid rotation config refused: %v", err)
	}
	// A disabled rate limit needs no burst.
	fs = flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	cfg = catalogsvc.RegisterFlags(fs)
	if err := fs.Parse([]string{"--service-credential=" + credential, "--rate-limit=0", "--rate-burst=0", "--rate-limit-callers=0"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("disabled rate limit refused: %v", err)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
