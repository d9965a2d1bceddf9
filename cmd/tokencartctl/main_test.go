package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/store"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/serve"
)

// product is a product of the seed catalog.
const product = "espresso-blend-1kg"

// services are a real authsvc and a real catalogsvc replica on free ports.
type services struct {
	authsvc       *authsvctest.Server
	auth, catalog string
}

func startServices(t *testing.T) services {
	t.Helper()
	a := authsvctest.Start(t, authsvctest.Options{})
	cfg := *catalogsvc.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.Serve.GRPCAddr, cfg.Serve.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Serve.DrainDelay, cfg.Serve.ShutdownTimeout = 0, 5*time.Second
	log := slog.New(slog.DiscardHandler)
	cfg.Serve.Logger = log
	cfg.DSN = filepath.Join(t.TempDir(), "catalog.db")
	cfg.Auth.Addr, cfg.Auth.ServiceCredential = a.GRPCAddr, authsvctest.TestServiceCredential
	cfg.RateLimit = 0

	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, cfg.DSN, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	validator, err := grpcauth.Dial(cfg.Auth, log)
	if err != nil {
		cancel()
		t.Fatal(errors.Join(err, st.Close()))
	}
	svc, err := catalogsvc.New(ctx, cfg, st, validator, log)
	if err == nil {
		var srv *serve.Server
		if srv, err = serve.New(cfg.Serve, svc.ServeOptions()...); err == nil {
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := errors.Join(<-done, validator.Close(), st.Close()); err != nil {
					t.Error(err)
				}
			})
			<-srv.Ready()
			expect.Eventually(t, 30*time.Second, "catalogsvc ready", func() bool { return validator.Ready(ctx) == nil })
			return services{authsvc: a, auth: a.GRPCAddr, catalog: srv.GRPCAddr()}
		}
	}
	cancel()
	t.Fatal(errors.Join(err, validator.Close(), st.Close()))
	return services{}
}

// ctl runs tokencartctl against s with its own state directory.
type ctl struct {
	t     *testing.T
	s     services
	state string
}

func (c ctl) run(stdin string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	base := []string{"--plaintext", "--auth", c.s.auth, "--catalog", c.s.catalog, "--state-dir", c.state}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = realMain(ctx, append(base, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// must runs a command that must succeed and returns its output.
func (c ctl) must(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("tokencartctl %q: exit %d: %s", args, code, errOut)
	}
	return out
}

// loggedIn returns a CLI with a new account logged in. The account is
// registered without the CLI, whose calls have a deadline: a password hash
// under the race detector on a busy machine can take longer.
func loggedIn(t *testing.T, s services, email string) ctl {
	s.authsvc.Register(t, email)
	c := ctl{t: t, s: s, state: t.TempDir()}
	if out := c.must(authsvctest.Password+"\n", "login", email); !strings.HasPrefix(out, "logged in as "+email+";") {
		t.Errorf("login printed %q", out)
	}
	return c
}

// rows returns the cells of a table's rows, header first.
func rows(out string) [][]string {
	var r [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		r = append(r, strings.Fields(line))
	}
	return r
}

// TestCLI runs tokencartctl against one real authsvc and one real
// catalogsvc replica.
func TestCLI(t *testing.T) {
	s := startServices(t)
	t.Run("tables and JSON", func(t *testing.T) { testTablesAndJSON(t, s) })
	t.Run("refresh", func(t *testing.T) { testRefresh(t, s) })
	t.Run("error line", func(t *testing.T) { testErrorLine(t, s) })
}

// testTablesAndJSON: the catalog and the cart print as aligned tables, and
// with --json as the protojson of the response.
func testTablesAndJSON(t *testing.T, s services) {
	c := loggedIn(t, s, "tables@example.com")

	seed, err := catalogsvc.SeedProducts()
	if err != nil {
		t.Fatal(err)
	}
	listing := c.must("", "products")
	products := rows(listing)
	if got := strings.Join(products[0], " "); got != "ID CATEGORY PRICE NAME" {
		t.Errorf("products header %q", got)
	}
	if len(products) != len(seed)+1 {
		t.Errorf("products: %d rows, want %d products and a header", len(products), len(seed))
	}
	lines := strings.Split(strings.TrimRight(listing, "\n"), "\n")
	nameCol := strings.Index(lines[0], "NAME")
	for _, row := range lines[1:] {
		if len(row) <= nameCol || row[nameCol-1] != ' ' || row[nameCol] == ' ' {
			t.Errorf("row %q: the name does not start under NAME (column %d)", row, nameCol)
		}
	}

	cart := rows(c.must("", "cart", "add", product, "2"))
	if got := strings.Join(cart[0], " "); got != "PRODUCT QTY UNIT PRICE TOTAL NAME" {
		t.Errorf("cart header %q", got)
	}
	if len(cart) != 3 || cart[1][0] != product || cart[1][1] != "2" || cart[2][0] != "SUBTOTAL" || cart[2][1] != "2" {
		t.Errorf("cart after adding 2 of %s:\n%q", product, cart)
	}

	var got catalogv1.Cart
	if err := protojson.Unmarshal([]byte(c.must("", "--json", "cart", "show")), &got); err != nil {
		t.Fatalf("--json cart show: %v", err)
	}
	if len(got.GetLines()) != 1 || got.GetLines()[0].GetProductId() != product || got.GetLines()[0].GetQuantity() != 2 {
		t.Errorf("--json cart show: %v", &got)
	}
	var list catalogv1.ListProductsResponse
	if err := protojson.Unmarshal([]byte(c.must("", "--json", "products", "coffee")), &list); err != nil || len(list.GetProducts()) == 0 {
		t.Errorf("--json products coffee: %d products, %v", len(list.GetProducts()), err)
	}
}

// testRefresh: when the saved access token is refused, the CLI refreshes
// it with the saved refresh token, saves both new tokens, and the command
// succeeds; when the refresh token is refused too, it says to log in.
func testRefresh(t *testing.T, s services) {
	c := loggedIn(t, s, "refresh@example.com")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(c.state, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	refreshBefore := read("refresh-token")
	for _, cmd := range [][]string{{"cart", "add", product}, {"me"}} {
		if err := os.WriteFile(filepath.Join(c.state, "token"), []byte("expired.or.revoked"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := c.must("", cmd...)
		if cmd[0] == "me" && !strings.HasPrefix(out, "ID ") {
			t.Errorf("me printed %q, want a table", out)
		}
		if read("token") == "expired.or.revoked" || read("refresh-token") == refreshBefore {
			t.Errorf("%q: the tokens were not replaced after the refresh", cmd)
		}
		refreshBefore = read("refresh-token")
	}

	if err := os.WriteFile(filepath.Join(c.state, "token"), []byte("expired.or.revoked"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.state, "refresh-token"), []byte("spent"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := c.run("", "cart", "show")
	if code != 1 || !strings.Contains(errOut, "run tokencartctl login EMAIL") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("with a spent refresh token: exit %d, %q; want 1 and one line saying to log in", code, errOut)
	}
}

// testErrorLine: a refused command prints one line naming the command, the
// violated field and what is wrong with it, or the message and the reason.
func testErrorLine(t *testing.T, s services) {
	c := loggedIn(t, s, "errors@example.com")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cart", "add", product, "0"}, 1, "tokencartctl: cart add: quantity: must be 1 to 999 (INVALID_ARGUMENT)\n"},
		{[]string{"cart", "set", "Not An Id", "1"}, 1, "tokencartctl: cart set: product_id: must be 1 to 64 characters of a-z, 0-9 and '-' (INVALID_ARGUMENT)\n"},
		{[]string{"cart", "add", "no-such-product"}, 1, "tokencartctl: cart add: no such product (NOT_FOUND: PRODUCT_NOT_FOUND)\n"},
		{[]string{"products", "Not A Category"}, 1, "tokencartctl: products: category: must be 1 to 64 characters of a-z, 0-9 and '-' (INVALID_ARGUMENT)\n"},
		{[]string{"cart", "add"}, 2, "tokencartctl: cart add takes PRODUCT [QTY]\n"},
		{[]string{"--tls-ca", "ca.pem", "products"}, 2, "tokencartctl: --plaintext cannot be combined with --tls-ca, --tls-server-name or --insecure-skip-verify\n"},
	}
	for _, tt := range tests {
		code, out, errOut := c.run("", tt.args...)
		if code != tt.code || errOut != tt.want || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
	other := ctl{t: t, s: s, state: t.TempDir()}
	if code, _, errOut := other.run(authsvctest.Password+"\n", "register", "errors@example.com"); code != 1 ||
		errOut != "tokencartctl: register: an account with this email already exists (ALREADY_EXISTS: EMAIL_TAKEN)\n" {
		t.Errorf("register a taken email: exit %d, %q", code, errOut)
	}
}
