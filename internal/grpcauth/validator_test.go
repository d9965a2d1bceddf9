package grpcauth_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/token"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 10 * time.Second

func baseConfig() grpcauth.Config {
	return grpcauth.Config{
		Mode:                grpcauth.ModeLocal,
		Issuer:              grpcauthtest.Issuer,
		Audience:            grpcauthtest.Audience,
		KeySetRefresh:       time.Minute, // refreshes in these tests are explicit
		RevocationStaleness: time.Second,
		StalePolicy:         grpcauth.StaleIntrospect,
		TokenCacheSize:      1000,
		IntrospectCacheTTL:  time.Second,
		// Every test client is 127.0.0.1; TestGuard sets its own limit.
		Guard: grpcauth.GuardConfig{Failures: 100000},
		Log:   slog.New(slog.DiscardHandler),
	}
}

// startValidator dials fake and runs a Validator with cfg until the test
// ends, returning once it is ready (and, in local mode, once the revocation
// feed has spoken).
func startValidator(t *testing.T, fake *grpcauthtest.Server, cfg grpcauth.Config) *grpcauth.Validator {
	t.Helper()
	conn, err := grpc.NewClient(fake.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := grpcauth.NewValidator(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		conn.Close()
	})
	expect.Eventually(t, testTimeout, "validator ready", func() bool {
		if v.Ready(ctx) != nil {
			return false
		}
		s := v.Status()
		return !s.Local || s.FeedComplete
	})
	return v
}

func authCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unauthenticated // what AuthFunc makes of a plain error
}

func TestLocalAcceptsAndRevokes(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	v := startValidator(t, fake, baseConfig())
	ctx := context.Background()
	raw := fake.Mint(t, "user-1", token.RoleCustomer)
	for range 3 { // miss, then hits
		c, err := v.Authenticate(ctx, raw)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if c.Subject != "user-1" || !c.HasRole(token.RoleCustomer) {
			t.Fatalf("claims = %+v", c)
		}
	}
	start := time.Now()
	fake.Revoke(t, raw)
	expect.Eventually(t, testTimeout, "revocation to apply", func() bool {
		_, err := v.Authenticate(ctx, raw)
		return err != nil
	})
	t.Logf("revocation applied after %v", time.Since(start))
	if _, err := v.Authenticate(ctx, raw); authCode(err) != codes.Unauthenticated {
		t.Errorf("revoked token: code %v, want Unauthenticated", authCode(err))
	}
	// Another token of the same user is unaffected.
	if _, err := v.Authenticate(ctx, fake.Mint(t, "user-1")); err != nil {
		t.Errorf("fresh token refused: %v", err)
	}
}

func TestLocalRefusesBadTokens(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	v := startValidator(t, fake, baseConfig())
	now := time.Now()
	good := token.Claims{Issuer: grpcauthtest.Issuer, Subject: "u", Audience: []string{grpcauthtest.Audience},
		ClientID: grpcauthtest.ClientID, TokenID: token.NewID(), IssuedAt: now.Add(-time.Minute), Expiry: now.Add(time.Hour)}
	with := func(f func(*token.Claims)) string {
		c := good
		c.TokenID = token.NewID()
		f(&c)
		return fake.MintClaims(t, c)
	}
	valid := fake.Mint(t, "u")
	raw := func(hdr map[string]any, drop string) string {
		p := map[string]any{"iss": good.Issuer, "sub": good.Subject, "aud": good.Audience, "client_id": good.ClientID,
			"jti": token.NewID(), "iat": good.IssuedAt.Unix(), "exp": good.Expiry.Unix(), "roles": []string{}}
		delete(p, drop)
		return fake.MintRaw(t, hdr, p)
	}
	tests := []struct {
		name string
		raw  string
	}{
		{"garbage", "not-a-token"},
		{"typ JWT", raw(map[string]any{"alg": "EdDSA", "typ": "JWT"}, "")},
		{"no typ", raw(map[string]any{"alg": "EdDSA"}, "")},
		{"no client_id (minted before RFC 9068)", raw(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, "client_id")},
		{"no jti", raw(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, "jti")},
		{"no sub", raw(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, "sub")},
		{"wrong issuer", with(func(c *token.Claims) { c.Issuer = "evil" })},
		{"wrong audience", with(func(c *token.Claims) { c.Audience = []string{"other"} })},
		{"expired", with(func(c *token.Claims) { c.IssuedAt = now.Add(-2 * time.Hour); c.Expiry = now.Add(-time.Hour) })},
		{"bit flipped", valid[:len(valid)-5] + flip(valid[len(valid)-5]) + valid[len(valid)-4:]},
	}
	// The crafted tokens differ from good only where their names say.
	if _, err := v.Authenticate(context.Background(), raw(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, "")); err != nil {
		t.Fatalf("crafted control token refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: a refused token must not be cached as good.
			for range 2 {
				if _, err := v.Authenticate(context.Background(), tt.raw); authCode(err) != codes.Unauthenticated {
					t.Errorf("code %v, want Unauthenticated", authCode(err))
				}
			}
		})
	}
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestLocalUnknownKeyRefresh(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	v := startValidator(t, fake, baseConfig())
	ctx := context.Background()
	before, _, _ := fake.Calls()

	// A key rotated in at authsvc is fetched on first sight of its kid.
	fake.RotateKey(t)
	if _, err := v.Authenticate(ctx, fake.Mint(t, "u")); err != nil {
		t.Fatalf("token signed with a freshly published key: %v", err)
	}
	after, _, _ := fake.Calls()
	if after != before+1 {
		t.Errorf("GetKeySet calls went %d -> %d, want one refresh", before, after)
	}

	// Tokens with unknown kids trigger at most one refresh per interval,
	// however many arrive.
	fake.SignWithUnpublished(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := v.Authenticate(ctx, fake.Mint(t, "u")); authCode(err) != codes.Unauthenticated {
				t.Errorf("unpublished key: code %v, want Unauthenticated", authCode(err))
			}
		})
	}
	wg.Wait()
	if got, _, _ := fake.Calls(); got > after+1 {
		t.Errorf("50 unknown-kid tokens caused %d GetKeySet calls, want at most 1", got-after)
	}
}

func TestLocalDropsWithdrawnKeys(t *testing.T) {
	t.Parallel()
	fake := grpcauthtest.Start(t)
	cfg := baseConfig()
	cfg.KeySetRefresh = 50 * time.Millisecond
	v := startValidator(t, fake, cfg)
	ctx := context.Background()
	raw := fake.Mint(t, "u")
	c, err := v.Authenticate(ctx, raw) // now cached
	if err != nil {
		t.Fatal(err)
	}
	fake.RotateKey(t)
	fake.Withdraw(c.KeyID)
	expect.Eventually(t, testTimeout, "withdrawn key to be refused", func() bool {
		_, err := v.Authenticate(ctx, raw)
		return err != nil
	})
}

func TestLocalStaleFeed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy grpcauth.StalePolicy
		cut    func(*grpcauthtest.Server, bool)
		want   codes.Code // for a good token while stale
	}{
		{"refuse, feed down", grpcauth.StaleRefuse, (*grpcauthtest.Server).SetFeedDown, codes.Unavailable},
		{"refuse, feed silent", grpcauth.StaleRefuse, (*grpcauthtest.Server).SetFeedSilent, codes.Unavailable},
		{"introspect, feed down", grpcauth.StaleIntrospect, (*grpcauthtest.Server).SetFeedDown, codes.OK},
		{"introspect, feed silent", grpcauth.StaleIntrospect, (*grpcauthtest.Server).SetFeedSilent, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := grpcauthtest.Start(t)
			cfg := baseConfig()
			cfg.StalePolicy = tt.policy
			cfg.RevocationStaleness = 300 * time.Millisecond
			v := startValidator(t, fake, cfg)
			ctx := context.Background()
			good, revoked := fake.Mint(t, "u"), fake.Mint(t, "u")
			for _, raw := range []string{good, revoked} {
				if _, err := v.Authenticate(ctx, raw); err != nil { // cached while fresh
					t.Fatal(err)
				}
			}

			cutAt := time.Now()
			tt.cut(fake, true)
			fake.Revoke(t, revoked) // the replica cannot hear this
			expect.Eventually(t, testTimeout, "feed to go stale", func() bool { return v.Status().Stale })
			t.Logf("stale %v after the cut (bound %v)", time.Since(cutAt), cfg.RevocationStaleness)

			if _, err := v.Authenticate(ctx, good); authCode(err) != tt.want {
				t.Errorf("good token while stale: code %v, want %v", authCode(err), tt.want)
			}
			// Under no policy is the token revoked during the outage accepted.
			if _, err := v.Authenticate(ctx, revoked); err == nil {
				t.Error("token revoked during the outage accepted while stale")
			}
			if tt.policy == grpcauth.StaleIntrospect {
				fake.SetIntrospectDown(true)
				if _, err := v.Authenticate(ctx, fake.Mint(t, "u")); authCode(err) != codes.Unavailable {
					t.Errorf("introspection down while stale: code %v, want Unavailable", authCode(err))
				}
				fake.SetIntrospectDown(false)
			}

			// The feed comes back: the replica resumes from its cursor, learns
			// the revocation it missed, and stops being stale.
			tt.cut(fake, false)
			expect.Eventually(t, testTimeout, "feed to recover", func() bool { return !v.Status().Stale })
			if _, err := v.Authenticate(ctx, good); err != nil {
				t.Errorf("good token after recovery: %v", err)
			}
			if !v.Revoked(claimsOf(t, revoked)) {
				t.Error("revocation published during the outage not received after it")
			}
		})
	}
}

// claimsOf returns what a revocation check needs of raw's claims.
func claimsOf(t *testing.T, raw string) token.Claims {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWS")
	}
	// Peek without verifying: tests only.
	var c struct {
		JTI string `json:"jti"`
		Sub string `json:"sub"`
		SID string `json:"sid"`
		IAT int64  `json:"iat"`
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		t.Fatal(err)
	}
	return token.Claims{TokenID: c.JTI, Subject: c.Sub, SessionID: c.SID, IssuedAt: time.Unix(c.IAT, 0)}
}

func TestRemoteMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ttl       time.Duration
		wantCalls int64 // introspections for 5 calls with one token
	}{
		{"cache on", time.Minute, 1},
		{"cache off", 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := grpcauthtest.Start(t)
			cfg := baseConfig()
			cfg.Mode = grpcauth.ModeRemote
			cfg.IntrospectCacheTTL = tt.ttl
			v := startValidator(t, fake, cfg)
			ctx := context.Background()
			raw := fake.Mint(t, "user-9", token.RoleAdmin)
			for range 5 {
				c, err := v.Authenticate(ctx, raw)
				if err != nil {
					t.Fatal(err)
				}
				if c.Subject != "user-9" || !c.HasRole(token.RoleAdmin) {
					t.Fatalf("claims = %+v", c)
				}
			}
			if _, got, _ := fake.Calls(); got != tt.wantCalls {
				t.Errorf("introspections = %d, want %d", got, tt.wantCalls)
			}
			// Garbage never reaches authsvc.
			if _, err := v.Authenticate(ctx, "garbage"); authCode(err) != codes.Unauthenticated {
				t.Errorf("garbage: code %v", authCode(err))
			}
			if _, got, _ := fake.Calls(); got != tt.wantCalls {
				t.Errorf("garbage caused an introspection")
			}
			fake.Revoke(t, raw)
			if tt.ttl == 0 {
				if _, err := v.Authenticate(ctx, raw); authCode(err) != codes.Unauthenticated {
					t.Errorf("revoked: code %v, want Unauthenticated", authCode(err))
				}
			}
			fake.SetIntrospectDown(true)
			if _, err := v.Authenticate(ctx, fake.Mint(t, "x")); authCode(err) != codes.Unavailable {
				t.Errorf("authsvc down: code %v, want Unavailable", authCode(err))
			}
		})
	}
}

// TestConfigValidate: the flags' defaults with a service credential are
// valid, and each invalid setting is refused with a message naming its flag.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	credential := "--service-credential=" + base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		flag string
		args []string
	}{
		{"--auth-mode", []string{"--auth-mode=both"}},
		{"--issuer", []string{"--issuer="}},
		{"--audience", []string{"--audience="}},
		{"--token-leeway", []string{"--token-leeway=1h"}},
		{"--keyset-refresh", []string{"--keyset-refresh=0s"}},
		{"--revocation-staleness", []string{"--revocation-staleness=-1s"}},
		{"--stale-policy", []string{"--stale-policy=ignore"}},
		{"--token-cache-size", []string{"--token-cache-size=-1"}},
		{"--introspect-cache-ttl", []string{"--introspect-cache-ttl=-1s"}},
		{"--revocation-capacity", []string{"--revocation-capacity=-1"}},
		{"--auth-failures", []string{"--auth-failures=-1"}},
		{"--auth-failure-every", []string{"--auth-failure-every=-1s"}},
		{"--trusted-proxy-hops", []string{"--trusted-proxy-hops=-1"}},
		{"--auth-addr", []string{"--auth-addr=authsvc"}},
		{"--service-credential", []string{"--service-credential="}},
		{"--service-credential", []string{"--service-credential=short"}},
		{"--auth-tls-ca", []string{"--auth-tls-cert=c.pem", "--auth-tls-key=k.pem"}},
		{"--auth-tls-key", []string{"--auth-tls-ca=ca.pem", "--auth-tls-cert=c.pem"}},
		{"--auth-tls-ca", []string{"--auth-tls-ca=" + filepath.Join(t.TempDir(), "none.pem")}},
	}
	parse := func(t *testing.T, args ...string) grpcauth.Config {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var c grpcauth.Config
		grpcauth.RegisterFlags(fs, &c)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := parse(t, credential).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := parse(t, append([]string{credential}, tt.args...)...).Validate()
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.flag)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vals []string
		want codes.Code
	}{
		{"ok", []string{"Bearer abc"}, codes.OK},
		{"lower-case scheme", []string{"bearer abc"}, codes.OK},
		{"missing", nil, codes.Unauthenticated},
		{"no scheme", []string{"abc"}, codes.Unauthenticated},
		{"basic", []string{"Basic abc"}, codes.Unauthenticated},
		{"doubled scheme", []string{"Bearer Bearer abc"}, codes.Unauthenticated},
		{"two values", []string{"Bearer a", "Bearer b"}, codes.Unauthenticated},
		{"empty token", []string{"Bearer "}, codes.Unauthenticated},
		{"oversized", []string{"Bearer " + strings.Repeat("a", token.MaxSize+1)}, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := metadata.MD{}
			for _, v := range tt.vals {
				md.Append("authorization", v)
			}
			_, err := grpcauth.BearerToken(metadata.NewIncomingContext(context.Background(), md))
			if got := status.Code(err); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthFuncPassesStatusOnly(t *testing.T) {
	t.Parallel()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer x"))
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"plain error", errors.New("bad signature on token x"), codes.Unauthenticated},
		{"unavailable", status.Error(codes.Unavailable, "later"), codes.Unavailable},
		{"canceled", context.Canceled, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := grpcauth.AuthFunc(authenticatorFunc(func(context.Context, string) (token.Claims, error) {
				return token.Claims{}, tt.err
			}))
			_, err := fn(ctx)
			if got := status.Code(err); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
			if strings.Contains(status.Convert(err).Message(), "token x") {
				t.Errorf("error detail leaked to the client: %v", err)
			}
		})
	}
}

type authenticatorFunc func(context.Context, string) (token.Claims, error)

func (f authenticatorFunc) Authenticate(ctx context.Context, raw string) (token.Claims, error) {
	return f(ctx, raw)
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// BenchmarkLocalAuthenticate is the per-call cost of the local check, with
// and without the verified-token cache.
func BenchmarkLocalAuthenticate(b *testing.B) {
	for _, size := range []int{grpcauth.DefaultTokenCacheSize, 0} {
		name := "cache-on"
		if size == 0 {
			name = "cache-off"
		}
		b.Run(name, func(b *testing.B) {
			fake := grpcauthtest.Start(b)
			cfg := baseConfig()
			cfg.TokenCacheSize = size
			cfg.RevocationStaleness = time.Minute
			conn, err := grpc.NewClient(fake.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			v, err := grpcauth.NewValidator(conn, cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- v.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			for v.Ready(ctx) != nil || v.Status().FeedLastMessage.IsZero() {
				time.Sleep(time.Millisecond) // polling, not synchronisation
			}
			raw := fake.Mint(b, "user-1", token.RoleCustomer)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Authenticate(ctx, raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
