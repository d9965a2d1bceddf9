package catalogsvc_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// addKey adds a cart key (base64, as configured) in every spelling a log
// could carry it.
func addKey(s expect.Secrets, name, b64 string) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		panic(err)
	}
	s.AddBytes(name, raw)
}

// TestNoSecretsInLogs runs a full session against catalogsvc replicas of
// every cart mode, logging JSON at DEBUG, with a real authsvc: login, cart
// changes, every kind of refusal, forged and revoked tokens, a store
// failure. No token (nor its signature), cart key or DSN password may
// appear in catalogsvc's log, and the Internal error the client gets says
// nothing of its cause (which the log has).
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	auth := authsvctest.Start(t, authsvctest.Options{})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			logs := &expect.LogBuffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClusterAt(t, m, auth.GRPCAddr)
			s := expect.Secrets{}
			s.Add("password", authsvctest.Password)
			if strings.HasPrefix(c.dsn, "postgres") {
				var pw string
				c.dsn, pw = withPassword(t, c.dsn)
				s.Add("DSN password", pw)
			}
			addKey(s, "cart key", c.cartKey)
			old := newClusterAt(t, m, auth.GRPCAddr).cartKey
			addKey(s, "old cart key", old)
			r := c.start(func(cfg *catalogsvc.Config) {
				cfg.Serve.Logger, cfg.Serve.LogLevel, cfg.Serve.LogFormat = log, slog.LevelDebug, "json"
				cfg.Serve.LogAllRefusals = true // every refusal's line is checked
				cfg.CartOldKeys = old
			})
			session(t, c, r, auth, s)
			// A replica that cannot reach its database fails to start with
			// an error (which main logs) that names no password.
			bad := "postgres://catalog:" + url.QueryEscape("p@ss-"+c.cartKey[:12]) + "@127.0.0.1:1/catalog?connect_timeout=1"
			if st, err := store.Open(testContext(t), bad, log); err == nil {
				st.Close()
				t.Error("replica started without its database")
			} else if strings.Contains(err.Error(), c.cartKey[:12]) {
				t.Errorf("startup error names the DSN password: %v", err)
			}

			out := logs.String()
			expect.NoSecrets(t, out, s)
			if n := strings.Count(out, "\n"); n < 20 || !strings.Contains(out, "CartService") {
				t.Errorf("only %d log lines, none about carts: is the log captured?", n)
			}
			if t.Failed() {
				t.Logf("log:\n%s", out)
			}
		})
	}
}

// session is a shopper's and an attacker's session against r; every token
// it uses goes into s.
func session(t *testing.T, c *cluster, r *replica, auth *authsvctest.Server, s expect.Secrets) {
	t.Helper()
	user := "leak-" + sanitize(t.Name()) + "@authtest.example"
	auth.Register(t, user)
	login := auth.Login(t, user)
	s.AddToken("access token", login.GetAccessToken())
	s.Add("refresh token", login.GetRefreshToken())
	sh := c.shopperWithToken(r, login.GetAccessToken())

	sh.add(espresso, 2, withRequestID("leak-1")).must(t)
	sh.add(espresso, 2, withRequestID("leak-1")).must(t)
	sh.set(kenya, 3).must(t)
	sh.get().must(t)
	expect.MustCode(t, "", sh.add(espresso, 2, withRequestID("leak-1"), expecting(0)).err, codes.InvalidArgument)
	expect.MustCode(t, "", sh.add(espresso, 5000).err, codes.InvalidArgument)
	expect.MustCode(t, "", sh.add("no-such-product", 1).err, codes.NotFound)
	expect.MustCode(t, "", sh.remove(kenya, expecting(99)).err, codes.Aborted)
	expect.MustCode(t, "", sh.add(espresso, 998).err, codes.FailedPrecondition)
	sh.remove(kenya).must(t)

	admin := auth.AdminToken(t)
	s.AddToken("admin token", admin)
	upsert(t, r, client.WithToken(testContext(t), admin), "leak-test-product", 3, 0)
	_, err := r.catalog.UpsertProduct(sh.ctx, &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{Id: "x"}})
	expect.MustCode(t, "", err, codes.PermissionDenied)

	if c.cartMode == catalogsvc.CartModeRequest {
		good := sh.state
		tampered := bytes.Clone(good)
		tampered[len(tampered)-1] ^= 1
		sh.state = tampered
		expect.MustCode(t, "", sh.get().err, codes.InvalidArgument)
		other := c.shopperWithToken(r, auth.Login(t, authsvctest.AdminEmail).GetAccessToken())
		other.state = good
		expect.MustCode(t, "", other.get().err, codes.PermissionDenied)
		sh.state = good
	}

	// Forged and malformed tokens.
	raw := login.GetAccessToken()
	parts := strings.Split(raw, ".")
	flipped := []byte(parts[1])
	flipped[3] ^= 1
	kid, err := token.KeyID(raw)
	if err != nil {
		t.Fatal(err)
	}
	forged := map[string]string{
		"forged: payload bit flipped": parts[0] + "." + string(flipped) + "." + parts[2],
		"forged: alg none":            validJWT(kid, "someone").with(map[string]any{"alg": "none"}, nil).input() + "." + parts[2],
		"forged: unknown kid":         validJWT("kid-"+parts[2][:20], "someone").input() + "." + parts[2],
		"forged: garbage":             "garbage-" + parts[2],
		"forged: too large":           raw + strings.Repeat("A", token.MaxSize),
	}
	for name, f := range forged {
		s.AddToken(name, f)
		_, err := r.carts.GetCart(client.WithToken(testContext(t), f), &catalogv1.GetCartRequest{})
		expect.MustCode(t, "", err, codes.Unauthenticated)
	}

	// A store failure: Internal, with nothing of its cause for the client.
	if c.cartMode == catalogsvc.CartModeStore && !strings.HasPrefix(c.dsn, "postgres") {
		corrupt := c.shopperWithToken(r, auth.Login(t, authsvctest.AdminEmail).GetAccessToken())
		corrupt.add(espresso, 1).must(t)
		db := openSQLite(t, c.dsn)
		if _, err := db.Exec(`UPDATE carts SET lines = '{not json' WHERE lines LIKE '%espresso%' AND version = 1`); err != nil {
			t.Fatal(err)
		}
		err := corrupt.get().err
		if st := status.Convert(err); !expect.Opaque(err) {
			t.Errorf("store failure reached the client as %v %q %v, want Internal \"internal error\"", st.Code(), st.Message(), st.Details())
		}
	}

	// Logout: the token is refused once the revocation arrives.
	if _, err := auth.Client.Logout(authsvctest.WithToken(testContext(t), raw), &authv1.LogoutRequest{RefreshToken: login.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	expect.Eventually(t, testTimeout, "revocation", func() bool { return status.Code(sh.get().err) == codes.Unauthenticated })
	expect.MustCode(t, "", sh.add(espresso, 1).err, codes.Unauthenticated)
}

// withPassword returns dsn with a password, and the password: its own if
// it has one, else a made-up one, which a server that trusts local
// connections (as the test servers do) never asks for.
func withPassword(t *testing.T, dsn string) (string, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if p, set := u.User.Password(); set {
		return dsn, p
	}
	key := make([]byte, 12)
	_, _ = rand.Read(key)
	password := "dsn-secret-" + hex.EncodeToString(key)
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), password
}
