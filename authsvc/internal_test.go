package authsvc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h := newHasher(MinArgon2Params, 1, time.Second)
	ctx := t.Context()
	enc, err := h.hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("PHC string %q", enc)
	}
	tests := []struct {
		name, password string
		hasher         *hasher
		ok, stale      bool
	}{
		{"right password", "correct horse", h, true, false},
		{"wrong password", "correct horsE", h, false, false},
		{"other parameters", "correct horse", newHasher(Argon2Params{Memory: 19 * 1024, Time: 3, Threads: 1}, 1, time.Second), true, true},
	}
	for _, tt := range tests {
		release, err := tt.hasher.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok, stale, err := tt.hasher.verifyHeld(tt.password, enc)
		release()
		if err != nil || ok != tt.ok || stale != tt.stale {
			t.Errorf("%s: verify = %v, %v, %v; want %v, %v", tt.name, ok, stale, err, tt.ok, tt.stale)
		}
	}
}

func TestDecodePHCRejects(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	good := "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key
	if _, _, _, err := decodePHC(good); err != nil {
		t.Fatalf("decodePHC(%q): %v", good, err)
	}
	for _, bad := range []string{
		"",
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"$argon2id$v=19$m=19456,t=2,p=1$$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$",
	} {
		if _, _, _, err := decodePHC(bad); err == nil {
			t.Errorf("decodePHC(%q) accepted", bad)
		}
	}
}

// TestHasherBounded: with every slot taken, a hash waits the queue timeout
// and then fails with errHasherBusy.
func TestHasherBounded(t *testing.T) {
	h := newHasher(MinArgon2Params, 1, 20*time.Millisecond)
	release, err := h.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.hash(t.Context(), "password"); !errors.Is(err, errHasherBusy) {
		t.Errorf("hash with no free slot = %v, want errHasherBusy", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	h.wait = time.Hour
	if _, err := h.hash(ctx, "password"); !errors.Is(err, context.Canceled) {
		t.Errorf("hash with a cancelled context = %v", err)
	}
	release()
	if _, err := h.hash(t.Context(), "password"); err != nil {
		t.Errorf("hash after release: %v", err)
	}
}

func TestCursor(t *testing.T) {
	for _, seq := range []int64{0, 1, 1 << 40} {
		if got, err := decodeCursor(encodeCursor(seq)); err != nil || got != seq {
			t.Errorf("cursor %d round trip: %d, %v", seq, got, err)
		}
	}
	if got, err := decodeCursor(""); got != 0 || err != nil {
		t.Errorf("empty cursor = %d, %v", got, err)
	}
	for _, bad := range []string{"x", "cnYxOg", "cnYxOi0x", "cnYxOjAx", "cnYxOmFiYw", "cnYxOjE=", "cnYyOjE"} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}

func TestThrottleDelay(t *testing.T) {
	s := &Service{cfg: Config{LoginThrottleDelay: time.Second, LoginThrottleWindow: 10 * time.Second}}
	for excess, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if got := s.throttleDelay(excess); got != want {
			t.Errorf("throttleDelay(%d) = %v, want %v", excess, got, want)
		}
	}
	if got := s.throttleDelay(1000); got != 10*time.Second {
		t.Errorf("throttleDelay(1000) = %v", got)
	}
}

// TestKeyTimingsFollowTheCacheLifetime: the defaults serve consumers that
// refetch the key set every 20 minutes (istiod's default), a publish delay
// shorter than the promised cache lifetime is refused naming both flags,
// and a key stays published past the expiry of its last token by at least
// the leeway and the cache lifetime.
func TestKeyTimingsFollowTheCacheLifetime(t *testing.T) {
	c := DefaultConfig()
	if c.JWKSMaxAge < 20*time.Minute || c.KeyPublishDelay < c.JWKSMaxAge+c.KeyReloadInterval {
		t.Errorf("defaults: --jwks-max-age %v, --key-publish-delay %v; want at least istiod's 20m refresh, and the delay above it",
			c.JWKSMaxAge, c.KeyPublishDelay)
	}
	tests := []struct {
		name          string
		maxAge, delay time.Duration
		ok            bool
	}{
		{"defaults", DefaultJWKSMaxAge, DefaultKeyPublishDelay, true},
		{"delay covers a longer cache lifetime", time.Hour, time.Hour + time.Minute, true},
		{"delay equal to the cache lifetime, no room for the reload", 30 * time.Minute, 30 * time.Minute, false},
		{"delay shorter than the cache lifetime", 30 * time.Minute, 25 * time.Minute, false},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.JWKSMaxAge, c.KeyPublishDelay = tt.maxAge, tt.delay
		err := c.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "--key-publish-delay") || !strings.Contains(err.Error(), "--jwks-max-age")) {
			t.Errorf("%s: %v does not name both flags", tt.name, err)
		}
		if got, least := c.keyRetention(), c.TokenLifetime+token.MaxLeeway+c.JWKSMaxAge; got < least {
			t.Errorf("%s: key retention %v, want at least token lifetime + leeway + cache lifetime = %v", tt.name, got, least)
		}
	}
}

func TestIssuerValidation(t *testing.T) {
	tests := []struct {
		issuer    string
		allowHTTP bool
		ok        bool
	}{
		{"https://auth.example.com", false, true},
		{"https://auth.example.com:8443/tenants/a", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://[::1]:8080", false, true},
		{"http://authsvc.tokencart.svc.cluster.local:8080", true, true},
		{"http://authsvc.tokencart.svc.cluster.local:8080", false, false},
		{"http://10.0.0.1:8080", false, false},
		{"", false, false},
		{"tokencart-authsvc", false, false},
		{"ftp://auth.example.com", false, false},
		{"https://", false, false},
		{"https://auth.example.com/", false, false},
		{"https://auth.example.com?tenant=a", false, false},
		{"https://auth.example.com#x", false, false},
		{"https://user:pw@auth.example.com", false, false},
		{"https:auth.example.com", false, false},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Issuer, c.IssuerAllowHTTP = tt.issuer, tt.allowHTTP
		err := c.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("--issuer %q (allow http %v): Validate() = %v, want ok %v", tt.issuer, tt.allowHTTP, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--issuer") {
			t.Errorf("--issuer %q: error %v does not name the flag", tt.issuer, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if c := DefaultConfig(); c.Validate() != nil {
		t.Fatalf("default config invalid: %v", c.Validate())
	}
	tests := []struct {
		flag   string
		modify func(*Config)
	}{
		{"--dsn", func(c *Config) { c.DSN = "" }},
		{"--issuer", func(c *Config) { c.Issuer = "" }},
		{"--token-lifetime", func(c *Config) { c.TokenLifetime = 0 }},
		{"--token-leeway", func(c *Config) { c.Leeway = 2 * time.Minute }},
		{"--key-encryption-key", func(c *Config) { c.KeyEncryptionKey = "c2hvcnQ=" }},
		{"--key-publish-delay", func(c *Config) { c.KeyPublishDelay = time.Second }},
		{"--key-rotation-interval", func(c *Config) { c.KeyRotationInterval = time.Minute }},
		{"--argon2-memory", func(c *Config) { c.Argon2.Memory = 1024 }},
		{"--argon2-time", func(c *Config) { c.Argon2.Time = 1 }},
		{"--hash-concurrency", func(c *Config) { c.HashConcurrency = 0 }},
		{"--login-account-limit", func(c *Config) { c.LoginAccountLimit = 0 }},
		{"--trusted-proxy-hops", func(c *Config) { c.Guard.TrustedProxyHops = -1 }},
		{"--bootstrap-admin", func(c *Config) { c.BootstrapAdmin = "nope" }},
		{"--revocation-heartbeat", func(c *Config) { c.RevocationHeartbeat = time.Millisecond }},
		{"--grpc-addr", func(c *Config) { c.Serve.GRPCAddr = "nonsense" }},
		{"--public-addr", func(c *Config) { c.PublicAddr = "nonsense" }},
		{"--client-id", func(c *Config) { c.ClientID = "" }},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.modify(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%s: Validate() = %v, want an error naming the flag", tt.flag, err)
		}
	}
	c := DefaultConfig()
	c.KeyEncryptionKey = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3Jl" // 33 bytes
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), c.KeyEncryptionKey) {
		t.Errorf("bad key-encryption key: %v (must be refused without echoing it)", err)
	}
}
