package catalogsvc_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/authsvc/authtest"
	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/grpcauth/fakeauth"
	"github.com/tokencart/tokencart/internal/pgtest"
	"github.com/tokencart/tokencart/internal/serve"
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
	{"postgres", pgtest.DSN, catalogsvc.CartModeStore},
	{"request", sqliteDSN, catalogsvc.CartModeRequest},
}

var storeModes = modes[:2]

func sqliteDSN(t testing.TB) string { return filepath.Join(t.TempDir(), "catalog.db") }

// cluster is an authsvc (a fake, or a real one from authtest) and one
// database that replicas share.
type cluster struct {
	t        testing.TB
	fake     *fakeauth.Server // nil with a real authsvc
	authAddr string
	dsn      string
	cartMode string
	cartKey  string
}

func newCluster(t testing.TB, m mode, opts ...fakeauth.Option) *cluster {
	t.Helper()
	fake := fakeauth.Start(t, opts...)
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
	cfg.AuthAddr = c.authAddr
	cfg.ServiceCredential = authtest.TestServiceCredential
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

// replica is a running catalogsvc and a client connection to it.
type replica struct {
	svc     *catalogsvc.Service
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
	svc, err := catalogsvc.New(ctx, cfg, cfg.Serve.Logger)
	if err != nil {
		cancel()
		t.Fatalf("catalogsvc.New: %v", err)
	}
	srv, err := svc.NewServer(extra...)
	if err != nil {
		cancel()
		t.Fatalf("NewServer: %v (close: %v)", err, svc.Close())
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, srv) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := svc.Close(); err != nil {
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
	r := &replica{svc: svc, srv: srv, addr: srv.GRPCAddr(), conn: conn,
		catalog: catalogv1.NewCatalogServiceClient(conn), carts: catalogv1.NewCartServiceClient(conn)}
	if waitReady {
		waitFor(t, "replica ready", func() bool {
			v := svc.Validator()
			return v.Ready(ctx) == nil && (v.Revocations() == nil || !v.Revocations().LastMessage().IsZero())
		})
	}
	return r
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t testing.TB, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code %v (%v), want %v", got, err, want)
	}
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
