// Package authsvctest runs a real authsvc in-process for tests: the real
// Service on a real serve.Server (the production interceptor chain) on
// 127.0.0.1:0, over a SQLite store in the test's temporary directory (or
// any DSN given), with settings that make tests fast. Services that verify
// authsvc's tokens (catalogsvc) use it to obtain real tokens and a real key
// set, JWKS endpoint and revocation feed.
//
//	auth := authsvctest.Start(t, authsvctest.Options{})
//	_, tok := auth.NewCustomer(t)
//	keys := auth.KeySet(t) // or fetch auth.JWKSURL(), or call auth.Client.GetKeySet
//	ctx := authsvctest.WithToken(t.Context(), tok)
package authsvctest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/token"
)

// Fixed credentials of the accounts the helpers create.
const (
	// AdminEmail is the bootstrap admin of every test server.
	AdminEmail = "admin@authtest.example"
	// Password is the password of every account the helpers register.
	Password = "correct horse battery staple"
)

// TestKeyEncryptionKey is the key-encryption key of every test server, one
// value so that replicas sharing a store can read each other's keys.
const TestKeyEncryptionKey = "OuvXkeUwlsBzMlbgdOoctwXSBxspXMkj8NisOdLJ780="

// TestServiceCredential is the service credential every test server
// accepts, for services under test that follow its revocation feed or
// introspect tokens (ServiceClient presents it).
const TestServiceCredential = "yM+71DmrShUXzHcWFtet4RTdH0/vGiYid4F6AWhuVdY="

// Config returns the configuration Start uses before Options.Configure:
// production settings made fast (minimum argon2id cost, keys reloaded
// every 50ms and published 300ms before they sign, revocations polled
// every 20ms), listening on 127.0.0.1:0, with TestKeyEncryptionKey,
// TestServiceCredential, AdminEmail as the bootstrap admin (Start puts the
// account into the store first, with Password) and per-address limits out
// of the way of tests that all come from 127.0.0.1.
func Config() authsvc.Config {
	c := authsvc.DefaultConfig()
	c.Serve.GRPCAddr, c.Serve.AdminAddr, c.PublicAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.Serve.DrainDelay = 0
	c.Serve.ShutdownTimeout = 5 * time.Second
	c.Argon2 = authsvc.MinArgon2Params
	c.HashConcurrency = 4
	c.HashQueueTimeout = 10 * time.Second
	c.TokenLifetime = time.Hour
	c.KeyReloadInterval = 50 * time.Millisecond
	c.JWKSMaxAge = 100 * time.Millisecond
	c.KeyPublishDelay = 300 * time.Millisecond
	c.KeyRotationInterval = 24 * time.Hour
	c.RevocationPollInterval = 20 * time.Millisecond
	c.RevocationHeartbeat = 500 * time.Millisecond
	c.LoginAddressLimit = 1000 // every test client is 127.0.0.1
	c.KeyEncryptionKey = TestKeyEncryptionKey
	c.ServiceCredentials = TestServiceCredential
	c.BootstrapAdmin = AdminEmail
	// Every test client is 127.0.0.1: per-address limits as high as the
	// tests' own traffic needs, per-session ones as in production.
	c.RegisterAddressLimit = 100000
	c.RefreshAddressLimit = 100000
	c.Guard.Failures = 100000
	return c
}

// Options configures Start.
type Options struct {
	// DSN is the store; empty means a new SQLite file in t.TempDir(). Two
	// servers started with one DSN are two replicas sharing their state.
	DSN string
	// Configure, if set, adjusts Config() before the server starts.
	Configure func(*authsvc.Config)
	// Logger receives the server's logs; nil means warnings and errors go
	// to the test's output.
	Logger *slog.Logger
	// Discoverable puts the public listener on a port chosen before the
	// start and makes the issuer its URL, so that a consumer can discover
	// the server from its issuer (the default issuer names a fixed port
	// that tests do not listen on).
	Discoverable bool
}

// Server is a running authsvc replica.
type Server struct {
	// Service is the replica's service, Store its own handle on the store.
	Service *authsvc.Service
	Store   *store.Store
	// Config is the configuration it runs with; DSN names its store.
	Config authsvc.Config
	DSN    string
	// GRPCAddr, AdminAddr and PublicAddr are the bound addresses.
	GRPCAddr, AdminAddr, PublicAddr string
	// Conn is a client connection to GRPCAddr; Client uses it.
	Conn   *grpc.ClientConn
	Client authv1.AuthServiceClient
	// ServiceClient presents TestServiceCredential on every call, as a
	// service following the revocation feed does.
	ServiceClient authv1.AuthServiceClient
}

// Start runs an authsvc replica until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	cfg := Config()
	if opts.Discoverable {
		cfg.PublicAddr = freeAddr(t)
		cfg.Issuer = "http://" + cfg.PublicAddr
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg.Serve.Logger = log
	dsn := opts.DSN
	if dsn == "" {
		dsn = filepath.Join(t.TempDir(), "authsvc.db")
	}
	cfg.DSN = dsn

	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, dsn, log)
	if err != nil {
		cancel()
		t.Fatalf("authsvctest: open store: %v", err)
	}
	if cfg.BootstrapAdmin == AdminEmail && cfg.BootstrapAdminPassword == "" {
		if err := createAdmin(ctx, st); err != nil {
			cancel()
			st.Close()
			t.Fatalf("authsvctest: %v", err)
		}
	}
	svc, err := authsvc.New(ctx, cfg, st, log)
	if err != nil {
		cancel()
		st.Close()
		t.Fatalf("authsvctest: %v", err)
	}
	srv, err := serve.New(cfg.Serve, svc.ServeOptions()...)
	if err != nil {
		cancel()
		st.Close()
		t.Fatalf("authsvctest: %v", err)
	}

	// ServeOptions registers the service and runs svc.Run with the server.
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := <-serveErr; err != nil {
			t.Errorf("authsvctest: server: %v", err)
		}
		st.Close()
	})
	select {
	case <-srv.Ready():
	case err := <-serveErr:
		serveErr <- err
		t.Fatalf("authsvctest: server did not start: %v", err)
	}

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("authsvctest: dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	serviceConn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcauth.ServiceCredential(TestServiceCredential)))
	if err != nil {
		t.Fatalf("authsvctest: dial: %v", err)
	}
	t.Cleanup(func() { serviceConn.Close() })
	return &Server{
		Service: svc, Store: st, Config: cfg, DSN: dsn,
		GRPCAddr: srv.GRPCAddr(), AdminAddr: srv.AdminAddr(), PublicAddr: srv.PublicAddr(),
		Conn: conn, Client: authv1.NewAuthServiceClient(conn), ServiceClient: authv1.NewAuthServiceClient(serviceConn),
	}
}

// JWKSURL is the key set's HTTP address on the public listener.
func (s *Server) JWKSURL() string { return "http://" + s.PublicAddr + authsvc.JWKSPath }

// DiscoveryURL is the discovery document's HTTP address on the public
// listener.
func (s *Server) DiscoveryURL() string { return "http://" + s.PublicAddr + authsvc.DiscoveryPath }

// freeAddr returns a 127.0.0.1 address whose port is free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("authsvctest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WithToken returns ctx carrying tok as the outgoing bearer token.
func WithToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// Register creates an account with Password.
func (s *Server) Register(t testing.TB, email string) *authv1.User {
	t.Helper()
	resp, err := s.Client.Register(t.Context(), &authv1.RegisterRequest{Email: email, Password: Password})
	if err != nil {
		t.Fatalf("authsvctest: Register(%s): %v", email, err)
	}
	return resp.GetUser()
}

// Login logs the account in with Password.
func (s *Server) Login(t testing.TB, email string) *authv1.LoginResponse {
	t.Helper()
	resp, err := s.Client.Login(t.Context(), &authv1.LoginRequest{Email: email, Password: Password})
	if err != nil {
		t.Fatalf("authsvctest: Login(%s): %v", email, err)
	}
	return resp
}

// NewCustomer registers a new customer account with a random email and
// returns it with a fresh access token.
func (s *Server) NewCustomer(t testing.TB) (*authv1.User, string) {
	t.Helper()
	email := fmt.Sprintf("customer-%s@authtest.example", rand.Text()[:10])
	u := s.Register(t, email)
	return u, s.Login(t, email).GetAccessToken()
}

// AdminToken returns a fresh access token of the admin account
// (AdminEmail, which the server created at start).
func (s *Server) AdminToken(t testing.TB) string {
	t.Helper()
	return s.Login(t, AdminEmail).GetAccessToken()
}

// KeySet fetches the published key set through GetKeySet.
func (s *Server) KeySet(t testing.TB) *token.KeySet {
	t.Helper()
	resp, err := s.Client.GetKeySet(t.Context(), &authv1.GetKeySetRequest{})
	if err != nil {
		t.Fatalf("authsvctest: GetKeySet: %v", err)
	}
	ks, err := token.ParseKeySet([]byte(resp.GetJwksJson()))
	if err != nil {
		t.Fatalf("authsvctest: parse key set: %v", err)
	}
	return ks
}

// Verifier returns a verifier of this server's tokens over keys (such as
// KeySet's), as a service that verifies on its own would build it.
func (s *Server) Verifier(t testing.TB, keys token.KeyLookup) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: s.Config.Issuer, Audience: s.Config.Audience, Keys: keys})
	if err != nil {
		t.Fatalf("authsvctest: %v", err)
	}
	return v
}

// adminHash is Password's hash, computed once per test binary: a hash
// costs hundreds of milliseconds under the race detector, and every Start
// would pay it.
var adminHash = sync.OnceValue(func() string { return authsvc.HashPassword(Password, authsvc.MinArgon2Params) })

// createAdmin puts the AdminEmail account into store, unless a replica
// sharing it did, so that the server grants it the admin role at start.
func createAdmin(ctx context.Context, st *store.Store) error {
	err := st.CreateUser(ctx, authsvc.User{
		ID: token.NewID(), Email: AdminEmail, PasswordHash: adminHash(),
		Roles: []string{token.RoleCustomer}, CreateTime: time.Now().Truncate(time.Microsecond),
	})
	if err != nil && !errors.Is(err, authsvc.ErrConflict) {
		return fmt.Errorf("create the admin account: %w", err)
	}
	return nil
}
