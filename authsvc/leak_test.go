package authsvc_test

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// dsnPassword is the password put into the PostgreSQL DSN when the test
// server's has none (a local server with trust authentication ignores it).
const dsnPassword = "s3cret-dsn-pw"

// TestSecretsNeverLogged runs a whole session, failures included, against
// a server logging JSON at debug level into a buffer, and looks in every
// line for the secrets the session handled: passwords, access tokens (and
// their signatures), refresh tokens, the key-encryption key, the signing
// keys' private halves and the DSN's password. At the end it closes the
// store under the running server: the clients get Internal with the
// generic message, while the detail goes to the log.
func TestSecretsNeverLogged(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		leakSession(t, filepath.Join(t.TempDir(), "authsvc.db"), "")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(sqldbtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		pw, ok := u.User.Password()
		if !ok {
			pw = dsnPassword
			u.User = url.UserPassword(u.User.Username(), pw)
		}
		leakSession(t, u.String(), pw)
	})
}

func leakSession(t *testing.T, dsn, dsnPass string) {
	ctx := t.Context()
	found := expect.Secrets{}
	logs := &expect.LogBuffer{}
	// Registered before the server starts, so that it runs after the server
	// has stopped: it sees every line, the shutdown's too.
	t.Cleanup(func() { checkLogs(t, logs.String(), found) })

	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	kekText := base64.StdEncoding.EncodeToString(kek)
	found.AddBytes("key-encryption key", kek)
	if dsnPass != "" {
		found.Add("DSN password", dsnPass)
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Logger: log, Configure: func(c *authsvc.Config) {
		c.KeyEncryptionKey = kekText
		c.Serve.LogAllRefusals = true // every refusal's line is checked
		c.RefreshReuseGrace = 0       // any second use of a refresh token is a replay
		c.LoginAccountLimit = 3
	}})
	c := s.Client
	signing := func(name string) string {
		k, err := s.Service.CurrentSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		found.AddBytes(name+" seed", k.Private.Seed())
		found.AddBytes(name+" private key", k.Private)
		return k.ID
	}
	firstKey := signing("first signing key")

	// Accounts, sessions, refresh and replay.
	password := "Canary-Pw-" + rand.Text()[:12]
	found.Add("password", password)
	const email = "leaky@example.com"
	if _, err := c.Register(ctx, &authv1.RegisterRequest{Email: email, Password: password}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	_, err := c.Register(ctx, &authv1.RegisterRequest{Email: email, Password: password})
	expect.Code(t, "Register again", err, codes.AlreadyExists)
	login := func(name string) *authv1.LoginResponse {
		t.Helper()
		resp, err := c.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		found.AddToken(name+" access token", resp.GetAccessToken())
		found.Add(name+" refresh token", resp.GetRefreshToken())
		return resp
	}
	first := login("first")
	asFirst := authsvctest.WithToken(ctx, first.GetAccessToken())
	if _, err := c.GetMe(asFirst, &authv1.GetMeRequest{}); err != nil {
		t.Errorf("GetMe: %v", err)
	}
	if r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: first.GetAccessToken()}); err != nil || !r.GetActive() {
		t.Errorf("IntrospectToken = %v, %v", r, err)
	}
	refreshed, err := c.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: first.GetRefreshToken()})
	if err != nil {
		t.Fatalf("RefreshToken: %v", err)
	}
	found.AddToken("refreshed access token", refreshed.GetAccessToken())
	found.Add("successor refresh token", refreshed.GetRefreshToken())
	_, err = c.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: first.GetRefreshToken()})
	expect.Code(t, "a replayed refresh token", err, codes.Unauthenticated)
	_, err = c.GetMe(authsvctest.WithToken(ctx, refreshed.GetAccessToken()), &authv1.GetMeRequest{})
	expect.Code(t, "GetMe with a token of the replayed session", err, codes.Unauthenticated)

	// Failed logins, until the account is throttled.
	const victim = "throttled@example.com"
	victimPassword := "Victim-Pw-" + rand.Text()[:12]
	found.Add("victim's password", victimPassword)
	if _, err := c.Register(ctx, &authv1.RegisterRequest{Email: victim, Password: victimPassword}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	for i := range s.Config.LoginAccountLimit {
		guess := victimPassword[:len(victimPassword)-1] + string(rune('a'+i)) // the typo a real user makes
		found.Add("wrong password "+guess[len(guess)-1:], guess)
		_, err := c.Login(ctx, &authv1.LoginRequest{Email: victim, Password: guess})
		expect.Code(t, "Login with a wrong password", err, codes.Unauthenticated)
	}
	_, err = c.Login(ctx, &authv1.LoginRequest{Email: victim, Password: victimPassword})
	expect.Code(t, "Login while throttled", err, codes.ResourceExhausted)
	_, err = c.Login(ctx, &authv1.LoginRequest{Email: "nobody@example.com", Password: password})
	expect.Code(t, "Login of an unknown email", err, codes.Unauthenticated)

	// Forged tokens, built from a real one and signed with the real key.
	second := login("second")
	f := newForger(t, s, second.GetAccessToken())
	for _, fg := range f.forgeries(t) {
		if len(fg.raw) >= 8 {
			found.Add("forged token: "+fg.name, fg.raw)
		}
		if printable(fg.raw) {
			_, err := c.GetMe(authsvctest.WithToken(ctx, fg.raw), &authv1.GetMeRequest{})
			expect.Code(t, "GetMe with a forged token ("+fg.name+")", err, codes.Unauthenticated)
		}
		if len(fg.raw) < 1<<19 {
			if _, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: fg.raw}); err != nil {
				t.Errorf("IntrospectToken of a forged token (%s): %v", fg.name, err)
			}
		}
	}

	// Revocation, its feed, key rotation, logout.
	feed := watch(t, s, "")
	feed.syncUp(t)
	third := login("third")
	if _, err := c.RevokeToken(authsvctest.WithToken(ctx, second.GetAccessToken()), &authv1.RevokeTokenRequest{Token: third.GetAccessToken()}); err != nil {
		t.Errorf("RevokeToken: %v", err)
	}
	thirdClaims, err := s.Verifier(t, s.KeySet(t)).Verify(third.GetAccessToken())
	if err != nil {
		t.Fatal(err)
	}
	feed.waitFor(t, thirdClaims, 5*time.Second)
	admin := s.AdminToken(t)
	found.AddToken("admin access token", admin)
	found.Add("admin password", authsvctest.Password)
	rot, err := c.RotateSigningKey(authsvctest.WithToken(ctx, admin), &authv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	expect.Eventually(t, 5*time.Second, "the new signing key to sign", func() bool {
		k, err := s.Service.CurrentSigningKey()
		return err == nil && k.ID == rot.GetKeyId()
	})
	if signing("second signing key") == firstKey {
		t.Fatal("the key did not rotate")
	}
	fourth := login("fourth")
	if _, err := c.Logout(authsvctest.WithToken(ctx, second.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: second.GetRefreshToken()}); err != nil {
		t.Errorf("Logout: %v", err)
	}

	// The store fails under the running server: each client gets the
	// generic Internal status, nothing more.
	if err := s.Store.Close(); err != nil {
		t.Fatal(err)
	}
	asFourth := authsvctest.WithToken(ctx, fourth.GetAccessToken())
	for name, call := range map[string]func() error{
		"Register": func() error {
			_, err := c.Register(ctx, &authv1.RegisterRequest{Email: "late@example.com", Password: password})
			return err
		},
		"Login": func() error {
			_, err := c.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
			return err
		},
		"RefreshToken": func() error {
			_, err := c.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: fourth.GetRefreshToken()})
			return err
		},
		"GetMe": func() error {
			_, err := c.GetMe(asFourth, &authv1.GetMeRequest{})
			return err
		},
		"IntrospectToken": func() error {
			_, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: fourth.GetAccessToken()})
			return err
		},
		"WatchRevocations": func() error {
			stream, err := s.ServiceClient.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		},
	} {
		if err := call(); !expect.Opaque(err) {
			st := status.Convert(err)
			t.Errorf("%s with the store closed: %v %q %v; want Internal, \"internal error\" and no details but its reason", name, st.Code(), st.Message(), st.Details())
		}
	}
}

// checkLogs fails the test if any line of logs contains a secret, and if
// the logs do not show the session's failures (so that an empty log cannot
// pass).
func checkLogs(t *testing.T, logs string, found expect.Secrets) {
	t.Helper()
	records := expect.NoSecrets(t, logs, found)
	var codesSeen []string
	details := 0
	for _, rec := range records {
		if code, ok := rec["grpc.code"].(string); ok {
			codesSeen = append(codesSeen, code)
		}
		if _, ok := rec["error.detail"]; ok {
			details++
		}
	}
	for _, want := range []string{"OK", "Unauthenticated", "ResourceExhausted", "AlreadyExists", "Internal"} {
		if !strings.Contains(strings.Join(codesSeen, " "), want) {
			t.Errorf("no finished call with code %s among %d log lines: the logs were not captured?", want, len(records))
		}
	}
	if details == 0 {
		t.Errorf("no error.detail in the logs: the internal errors' detail must go there")
	}
}
