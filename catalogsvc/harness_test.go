package catalogsvc_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
	"github.com/tokencart/tokencart/internal/token"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 30 * time.Second

// mode is one of the three ways carts are kept; the cart contract holds in
// each.
type mode struct {
	name     string
	dsn      func(t testing.TB) string
	cartMode string
}

var modes = []mode{
	{"sqlite", sqliteDSN, catalogsvc.CartModeStore},
	{"postgres", sqldbtest.DSN, catalogsvc.CartModeStore},
	{"request", sqliteDSN, catalogsvc.CartModeRequest},
}

var storeModes = modes[:2]

func sqliteDSN(t testing.TB) string { return filepath.Join(t.TempDir(), "catalog.db") }

// cluster is an authsvc (a fake, or a real one from authsvctest) and one
// database that replicas share.
type cluster struct {
	t        testing.TB
	fake     *grpcauthtest.Server // nil with a real authsvc
	authAddr string
	dsn      string
	cartMode string
	cartKey  string
}

func newCluster(t testing.TB, m mode, opts ...grpcauthtest.Option) *cluster {
	t.Helper()
	fake := grpcauthtest.Start(t, opts...)
	c := newClusterAt(t, m, fake.Addr())
	c.fake = fake
	return c
}

// newClusterAt returns a cluster whose replicas use the authsvc at addr.
func newClusterAt(t testing.TB, m mode, authAddr string) *cluster {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &cluster{
		t: t, authAddr: authAddr, dsn: m.dsn(t), cartMode: m.cartMode,
		cartKey: base64.StdEncoding.EncodeToString(key),
	}
}

// config returns a replica's configuration: the flag defaults, pointed at
// the cluster, on free ports.
func (c *cluster) config() catalogsvc.Config {
	cfg := *catalogsvc.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.Serve.GRPCAddr, cfg.Serve.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Serve.DrainDelay = 0
	cfg.Serve.ShutdownTimeout = 5 * time.Second
	cfg.Serve.Logger = testLogger()
	cfg.DSN, cfg.CartMode, cfg.CartKey = c.dsn, c.cartMode, c.cartKey
	cfg.Auth.Addr = c.authAddr
	cfg.Auth.ServiceCredential = authsvctest.TestServiceCredential
	cfg.Auth.RevocationStaleness = 2 * time.Second
	cfg.CatalogRefresh = 200 * time.Millisecond
	// Many tests send hundreds of calls a second as one user, or hundreds
	// of bad tokens, all from 127.0.0.1; the rate limit and the failed-
	// authentication limit have tests of their own.
	cfg.RateLimit = 0
	cfg.Auth.Guard.Failures = 100000
	return cfg
}

func testLogger() *slog.Logger {
	if os.Getenv("CATALOGSVC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// replica is a running catalogsvc, wired as cmd/catalogsvc wires it, and a
// client connection to it.
type replica struct {
	svc     *catalogsvc.Service
	auth    *grpcauth.Validator
	srv     *serve.Server
	addr    string
	conn    *grpc.ClientConn
	catalog catalogv1.CatalogServiceClient
	carts   catalogv1.CartServiceClient
}

// start runs a replica until the test ends and returns it once it serves
// with a key set and a live revocation feed (unless waitReady is false).
func (c *cluster) start(modify ...func(*catalogsvc.Config)) *replica {
	return c.startWith(true, modify...)
}

func (c *cluster) startWith(waitReady bool, modify ...func(*catalogsvc.Config)) *replica {
	c.t.Helper()
	cfg := c.config()
	for _, m := range modify {
		m(&cfg)
	}
	return startReplica(c.t, cfg, waitReady)
}

// startReplica runs a replica with cfg until the test ends, its server
// built with extra serve options.
func startReplica(t testing.TB, cfg catalogsvc.Config, waitReady bool, extra ...serve.Option) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := cfg.Serve.Logger
	st, err := store.Open(ctx, cfg.DSN, log)
	if err != nil {
		cancel()
		t.Fatalf("store.Open: %v", err)
	}
	auth, err := grpcauth.Dial(cfg.Auth, log)
	if err != nil {
		cancel()
		t.Fatalf("grpcauth.Dial: %v (close: %v)", err, st.Close())
	}
	closeAll := func() error { return errors.Join(auth.Close(), st.Close()) }
	svc, err := catalogsvc.New(ctx, cfg, st, auth, log)
	if err != nil {
		cancel()
		t.Fatalf("catalogsvc.New: %v (close: %v)", err, closeAll())
	}
	srv, err := serve.New(cfg.Serve, append(svc.ServeOptions(), extra...)...)
	if err != nil {
		cancel()
		t.Fatalf("serve.New: %v (close: %v)", err, closeAll())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := closeAll(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &replica{svc: svc, auth: auth, srv: srv, addr: srv.GRPCAddr(), conn: conn,
		catalog: catalogv1.NewCatalogServiceClient(conn), carts: catalogv1.NewCartServiceClient(conn)}
	if waitReady {
		expect.Eventually(t, testTimeout, "replica ready", func() bool {
			s := auth.Status()
			return auth.Ready(ctx) == nil && (!s.Local || !s.FeedLastMessage.IsZero())
		})
	}
	return r
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// shopper is one user's cart client. It carries the cart_state from each
// response to the next request, as a request-mode client must (in the store
// modes the server sends none and it carries nothing).
type shopper struct {
	t       testing.TB
	ctx     context.Context
	carts   catalogv1.CartServiceClient
	state   []byte
	request bool // request mode: every response must carry a cart_state
}

func (c *cluster) shopper(r *replica, subject string, roles ...string) *shopper {
	if len(roles) == 0 {
		roles = []string{token.RoleCustomer}
	}
	return c.shopperWithToken(r, c.fake.Mint(c.t, subject, roles...))
}

// shopperWithToken is a shopper calling with the access token raw.
func (c *cluster) shopperWithToken(r *replica, raw string) *shopper {
	return &shopper{
		t: c.t, ctx: client.WithToken(testContext(c.t), raw), carts: r.carts,
		request: c.cartMode == catalogsvc.CartModeRequest,
	}
}

// via makes the next calls go to replica r.
func (s *shopper) via(r *replica) *shopper {
	s.carts = r.carts
	return s
}

type mutation struct {
	requestID string
	expected  *int64
}

type mutOpt func(*mutation)

func withRequestID(id string) mutOpt { return func(m *mutation) { m.requestID = id } }
func expecting(v int64) mutOpt       { return func(m *mutation) { m.expected = &v } }

func opts(o []mutOpt) mutation {
	var m mutation
	for _, f := range o {
		f(&m)
	}
	return m
}

// result is a cart call's outcome.
type result struct {
	cart *catalogv1.Cart
	err  error
}

// must returns the cart, failing the test on an error.
func (r result) must(t testing.TB) *catalogv1.Cart {
	t.Helper()
	if r.err != nil {
		t.Fatalf("cart call: %v", r.err)
	}
	return r.cart
}

// keep records a response's cart_state.
func (s *shopper) keep(c *catalogv1.Cart, state []byte, err error) result {
	s.t.Helper()
	if err != nil {
		return result{err: err}
	}
	switch {
	case s.request && len(state) == 0:
		s.t.Errorf("request mode: response without cart_state")
	case !s.request && len(state) != 0:
		s.t.Errorf("store mode: response with a cart_state")
	}
	s.state = state
	return result{cart: c}
}

func (s *shopper) get() result {
	s.t.Helper()
	resp, err := s.carts.GetCart(s.ctx, &catalogv1.GetCartRequest{CartState: s.state})
	return s.keep(resp.GetCart(), resp.GetCartState(), err)
}

func (s *shopper) add(id string, q int64, o ...mutOpt) result {
	s.t.Helper()
	m := opts(o)
	resp, err := s.carts.AddItem(s.ctx, &catalogv1.AddItemRequest{ProductId: id, Quantity: q, RequestId: m.requestID, ExpectedVersion: m.expected, CartState: s.state})
	return s.keep(resp.GetCart(), resp.GetCartState(), err)
}

func (s *shopper) set(id string, q int64, o ...mutOpt) result {
	s.t.Helper()
	m := opts(o)
	resp, err := s.carts.SetItemQuantity(s.ctx, &catalogv1.SetItemQuantityRequest{ProductId: id, Quantity: q, RequestId: m.requestID, ExpectedVersion: m.expected, CartState: s.state})
	return s.keep(resp.GetCart(), resp.GetCartState(), err)
}

func (s *shopper) remove(id string, o ...mutOpt) result {
	s.t.Helper()
	m := opts(o)
	resp, err := s.carts.RemoveItem(s.ctx, &catalogv1.RemoveItemRequest{ProductId: id, RequestId: m.requestID, ExpectedVersion: m.expected, CartState: s.state})
	return s.keep(resp.GetCart(), resp.GetCartState(), err)
}

func (s *shopper) clear(o ...mutOpt) result {
	s.t.Helper()
	m := opts(o)
	resp, err := s.carts.ClearCart(s.ctx, &catalogv1.ClearCartRequest{RequestId: m.requestID, ExpectedVersion: m.expected, CartState: s.state})
	return s.keep(resp.GetCart(), resp.GetCartState(), err)
}
