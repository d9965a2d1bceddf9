package authsvc_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

func TestRegister(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{})
	ctx := t.Context()
	tests := []struct {
		name, email, password string
		want                  codes.Code
	}{
		{"ok", "reg@example.com", "12345678", codes.OK},
		{"same email, other case and spaces", "  REG@Example.com\t", "12345678", codes.AlreadyExists},
		{"8 non-ASCII characters", "unicode@example.com", "пароль-☃", codes.OK},
		{"256 characters", "long@example.com", strings.Repeat("é", 256), codes.OK},
		{"7 characters", "short@example.com", "1234567", codes.InvalidArgument},
		{"257 characters", "toolong@example.com", strings.Repeat("a", 257), codes.InvalidArgument},
		{"no email", "", "12345678", codes.InvalidArgument},
		{"not an email", "not-an-email", "12345678", codes.InvalidArgument},
		{"display name", "Bob <bob@example.com>", "12345678", codes.InvalidArgument},
		{"over 254 bytes", strings.Repeat("a", 250) + "@example.com", "12345678", codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Client.Register(ctx, &authv1.RegisterRequest{Email: tt.email, Password: tt.password})
			expect.Code(t, "Register", err, tt.want)
			if err == nil && resp.GetUser().GetEmail() != strings.ToLower(strings.TrimSpace(tt.email)) {
				t.Errorf("email stored as %q", resp.GetUser().GetEmail())
			}
		})
	}
	if _, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: "unicode@example.com", Password: "пароль-☃"}); err != nil {
		t.Errorf("login with a non-ASCII password: %v", err)
	}
}

// TestBootstrapAdmin: registering the bootstrap admin's address after
// authsvc started never grants the role (whoever came first would be
// admin); an account that exists when authsvc starts with the flag gets it;
// with a password, authsvc creates the account itself, and grants the role
// to an existing one only if it has that password.
func TestBootstrapAdmin(t *testing.T) {
	dsn := t.TempDir() + "/authsvc.db"
	ctx := t.Context()
	roles := func(s *authsvctest.Server, email, password string) []string {
		t.Helper()
		login, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
		if err != nil {
			t.Fatalf("Login(%s): %v", email, err)
		}
		me, err := s.Client.GetMe(authsvctest.WithToken(ctx, login.GetAccessToken()), &authv1.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return me.GetUser().GetRoles()
	}
	bootstrap := func(email, password string) func(*authsvc.Config) {
		return func(c *authsvc.Config) { c.BootstrapAdmin, c.BootstrapAdminPassword = email, password }
	}

	a := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: bootstrap("boss@example.com", "")})
	if r := a.Register(t, " BOSS@example.com").GetRoles(); slices.Contains(r, token.RoleAdmin) {
		t.Errorf("the bootstrap admin's address registered after the start got roles %v", r)
	}
	if r := roles(a, "boss@example.com", authsvctest.Password); slices.Contains(r, token.RoleAdmin) {
		t.Errorf("registered after the start: roles %v", r)
	}
	b := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: bootstrap("Boss@example.com", "")})
	if r := roles(b, "boss@example.com", authsvctest.Password); !slices.Contains(r, token.RoleAdmin) {
		t.Errorf("an account that existed at the start: roles %v, want admin", r)
	}

	const secret = "the one-time bootstrap secret"
	c := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: bootstrap("root@example.com", secret)})
	if r := roles(c, "root@example.com", secret); !slices.Contains(r, token.RoleAdmin) {
		t.Errorf("the account authsvc created: roles %v, want admin", r)
	}
	c.Register(t, "claimed@example.com") // someone registers the address first, with another password
	d := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: bootstrap("claimed@example.com", secret)})
	if r := roles(d, "claimed@example.com", authsvctest.Password); slices.Contains(r, token.RoleAdmin) {
		t.Errorf("an account with another password than the bootstrap password: roles %v", r)
	}
	if _, err := d.Client.Login(ctx, &authv1.LoginRequest{Email: "claimed@example.com", Password: secret}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the bootstrap password logs in to the account someone else registered: %v", err)
	}
}

// TestLoginFailuresLookAlike checks that an unknown email and a wrong
// password get the very same status, details included. Their times are
// logged, not asserted: both cost one argon2id hash.
func TestLoginFailuresLookAlike(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.LoginAccountLimit = 100 }})
	ctx := t.Context()
	s.Register(t, "known@example.com")
	attempts := map[string]*authv1.LoginRequest{
		"wrong password": {Email: "known@example.com", Password: "wrong password"},
		"unknown email":  {Email: "unknown@example.com", Password: authsvctest.Password},
		"malformed":      {Email: "not an email", Password: authsvctest.Password},
		"empty password": {Email: "known@example.com"},
	}
	var first *status.Status
	for name, req := range attempts {
		var total time.Duration
		const n = 3
		for range n {
			start := time.Now()
			_, err := s.Client.Login(ctx, req)
			total += time.Since(start)
			st := status.Convert(err)
			if st.Code() != codes.Unauthenticated {
				t.Fatalf("%s: %v, want Unauthenticated", name, err)
			}
			if first == nil {
				first = st
			} else if !proto.Equal(st.Proto(), first.Proto()) {
				t.Errorf("%s answers %v, another failure %v", name, st.Proto(), first.Proto())
			}
		}
		t.Logf("%-15s mean %v", name, total/n)
	}
}

// TestLoginThrottle counts failures per account and per client address
// across two replicas sharing the store.
func TestLoginThrottle(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := &clock{}
		a, b := startPair(t, dsn, func(c *authsvc.Config) {
			c.Now = clk.Now
			c.LoginAccountLimit = 3
			c.LoginAddressLimit = 5
			c.LoginThrottleDelay = time.Second
		})
		ctx := t.Context()
		replicas := []*authsvctest.Server{a, b}
		a.Register(t, "victim@example.com")
		login := func(i int, email, password string) error {
			_, err := replicas[i%2].Client.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
			return err
		}

		// Per account: three failures on either replica, then a wait.
		for i := range 3 {
			expect.Code(t, "wrong password", login(i, "victim@example.com", "wrong password"), codes.Unauthenticated)
		}
		err := login(3, "victim@example.com", authsvctest.Password)
		expect.Code(t, "login after three failures", err, codes.ResourceExhausted)
		if d := retryDelay(t, err); d <= 0 || d > 1100*time.Millisecond {
			t.Errorf("retry delay %v, want about the 1s throttle delay", d)
		}
		err = login(4, "victim@example.com", "wrong password")
		expect.Code(t, "a guess while throttled", err, codes.ResourceExhausted)
		clk.Advance(1100 * time.Millisecond)
		if err := login(5, "victim@example.com", authsvctest.Password); err != nil {
			t.Fatalf("login after the delay: %v", err)
		}
		if err := login(6, "victim@example.com", authsvctest.Password); err != nil {
			t.Fatalf("a success resets the account's count: %v", err)
		}

		// Per address: failures on any accounts from one address.
		clk.Advance(a.Config.LoginThrottleWindow)
		for i := range 5 {
			expect.Code(t, "unknown account", login(i, fmt.Sprintf("nobody%d@example.com", i), "x"), codes.Unauthenticated)
		}
		err = login(0, "victim@example.com", authsvctest.Password)
		expect.Code(t, "login from a throttled address", err, codes.ResourceExhausted)
		retryDelay(t, err)

		// Behind a trusted proxy, the address is the forwarded one.
		c := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.Now = clk.Now
			c.LoginAddressLimit = 5
			c.Guard.TrustedProxyHops = 1
		}})
		fwd := metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", "203.0.113.7")
		if _, err := c.Client.Login(fwd, &authv1.LoginRequest{Email: "victim@example.com", Password: authsvctest.Password}); err != nil {
			t.Errorf("login forwarded for another address: %v", err)
		}
	})
}

func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	d, ok := client.RetryDelay(err)
	if !ok {
		t.Errorf("%v carries no RetryInfo", err)
	}
	return d
}

// TestRehashOnLogin: a replica configured with stronger argon2id
// parameters upgrades a stored hash when the password is next presented.
func TestRehashOnLogin(t *testing.T) {
	dsn := t.TempDir() + "/authsvc.db"
	a := authsvctest.Start(t, authsvctest.Options{DSN: dsn})
	a.Register(t, "upgrade@example.com")
	b := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) { c.Argon2.Time = 3 }})
	b.Login(t, "upgrade@example.com")
	u, err := b.Store.UserByEmail(t.Context(), "upgrade@example.com")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=3,p=1$") {
		t.Errorf("hash after login on the stronger replica: %q, %v", u.PasswordHash, err)
	}
	b.Login(t, "upgrade@example.com")
}
