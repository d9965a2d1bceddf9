// Package catalogsvc serves tokencart's product catalog and shopping carts
// (tokencart.catalog.v1 CatalogService and CartService) as identical,
// stateless replicas.
//
// Every replica can serve every request and keeps nothing a client depends
// on in memory:
//
//   - tokens are checked by internal/grpcauth (signature against authsvc's
//     published keys plus its revocation feed, or introspection at authsvc);
//   - the catalog lives in the database and is served from an in-memory
//     snapshot reloaded when the database's change counter moves (polled
//     every --catalog-refresh, and at once after this replica's own writes);
//   - a cart lives in the database (one transaction per change, safe across
//     replicas) or, in request mode, travels sealed in the requests.
package catalogsvc

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	grpcratelimit "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/cartstate"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/ratelimit"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// PublicMethods are the methods callable without a token: catalog reads.
// Every other method of the service requires one.
var PublicMethods = []string{
	catalogv1.CatalogService_ListProducts_FullMethodName,
	catalogv1.CatalogService_GetProduct_FullMethodName,
	catalogv1.CatalogService_SearchProducts_FullMethodName,
}

// pruneEvery is how often expired idempotency keys are deleted.
const pruneEvery = 10 * time.Minute

// database is what the service needs from its store; store.SQLite and
// store.Postgres provide it.
type database interface {
	Ping(ctx context.Context) error
	Close() error
	CatalogVersion(ctx context.Context) (int64, error)
	Products(ctx context.Context) ([]store.Product, error)
	UpsertProduct(ctx context.Context, p store.Product) error
	DeleteProduct(ctx context.Context, id string) error
	SeedProducts(ctx context.Context, products []store.Product) (bool, error)
	Cart(ctx context.Context, owner string) (cart.Cart, error)
	MutateCart(ctx context.Context, owner string, req store.Request, apply store.ApplyFunc) (cart.Cart, error)
	PruneRequests(ctx context.Context, cutoff time.Time) (int64, error)
}

// Service is one catalogsvc replica: the gRPC handlers and the background
// work that keeps its caches fresh. Build it with New, get its server with
// NewServer, run both with Serve, and Close it after. (Register, AuthFunc,
// Ready and Run are the parts, for a server built some other way.)
type Service struct {
	cfg       Config
	log       *slog.Logger
	db        database
	carts     cartBackend
	authConn  *grpc.ClientConn
	validator *grpcauth.Validator

	snap     atomic.Pointer[snapshot]
	reloadMu sync.Mutex // serialises snapshot reloads, so an older one never replaces a newer
}

// New opens the database (migrating it, and seeding the catalog on first
// start when cfg.Seed), loads the catalog snapshot and prepares token
// validation against authsvc at cfg.AuthAddr (connected lazily).
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log}
	var err error
	if sqldb.IsPostgres(cfg.DSN) {
		s.db, err = store.OpenPostgres(ctx, cfg.DSN, log)
	} else {
		s.db, err = store.OpenSQLite(ctx, cfg.DSN, log)
	}
	if err != nil {
		return nil, err
	}
	if err := s.init(ctx); err != nil {
		return nil, errors.Join(err, s.db.Close())
	}
	return s, nil
}

func (s *Service) init(ctx context.Context) error {
	if s.cfg.Seed {
		seed, err := SeedProducts()
		if err != nil {
			return err
		}
		seeded, err := s.db.SeedProducts(ctx, seed)
		if err != nil {
			return err
		}
		if seeded {
			s.log.InfoContext(ctx, "seed catalog loaded", "products", len(seed))
		}
	}
	if err := s.refreshCatalog(ctx); err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}

	switch s.cfg.CartMode {
	case CartModeRequest:
		current, old, err := s.cfg.cartKeys()
		if err != nil {
			return err
		}
		sealer, err := cartstate.New(current, old...)
		if err != nil {
			return err
		}
		s.carts = requestCarts{sealer: sealer}
	default:
		s.carts = storeCarts{db: s.db}
	}

	creds, err := s.cfg.authCredentials()
	if err != nil {
		return fmt.Errorf("authsvc TLS: %w", err)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Back within seconds of authsvc, however long it was away.
		grpc.WithConnectParams(client.ConnectParams),
	}
	if s.cfg.ServiceCredential != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(grpcauth.ServiceCredential(strings.TrimSpace(s.cfg.ServiceCredential))))
	}
	conn, err := grpc.NewClient(s.cfg.AuthAddr, dialOpts...)
	if err != nil {
		return fmt.Errorf("authsvc client: %w", err)
	}
	authCfg := s.cfg.Auth
	authCfg.Guard.TrustedProxyHops = s.cfg.TrustedProxyHops
	authCfg.Log = s.log.With("component", "grpcauth")
	v, err := grpcauth.NewValidator(conn, authCfg)
	if err != nil {
		conn.Close()
		return err
	}
	s.authConn, s.validator = conn, v
	return nil
}

// Register registers the catalog and cart services on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	catalogv1.RegisterCatalogServiceServer(r, catalogServer{s: s})
	catalogv1.RegisterCartServiceServer(r, cartServer{s: s})
}

// AuthFunc returns the token check for go-grpc-middleware's auth
// interceptor (serve.WithAuth), to be applied to every method but
// PublicMethods.
func (s *Service) AuthFunc() auth.AuthFunc { return grpcauth.AuthFunc(s.validator) }

// Ready is the readiness check: an error until authsvc's key set is loaded.
func (s *Service) Ready(ctx context.Context) error { return s.validator.Ready(ctx) }

// Validator returns the token validator, for tests and diagnostics.
func (s *Service) Validator() *grpcauth.Validator { return s.validator }

// Run does the background work until ctx is done: the key-set refresh and
// revocation feed, the catalog poll, and (store mode) the pruning of expired
// idempotency keys. It returns nil when ctx is done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.validator.Run(ctx) })
	g.Go(func() error { return s.pollCatalog(ctx) })
	if s.cfg.CartMode == CartModeStore {
		g.Go(func() error { return s.pruneRequests(ctx) })
	}
	return g.Wait()
}

// Close releases the database and the authsvc connection.
func (s *Service) Close() error {
	return errors.Join(s.authConn.Close(), s.db.Close())
}

func (s *Service) pruneRequests(ctx context.Context) error {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// An hour past the retention, so a key is kept at least that long
		// whatever the clocks of the replicas say.
		n, err := s.db.PruneRequests(ctx, time.Now().Add(-store.RequestRetention-time.Hour))
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "pruning idempotency keys failed", "error", err)
		} else if n > 0 {
			s.log.DebugContext(ctx, "pruned idempotency keys", "count", n)
		}
	}
}

//go:embed seed/products.json
var seedJSON []byte

// SeedProducts returns the built-in catalog, each product checked by the
// same rules as UpsertProduct.
func SeedProducts() ([]store.Product, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(seedJSON, &raw); err != nil {
		return nil, fmt.Errorf("seed catalog: %w", err)
	}
	now := time.Now()
	out := make([]store.Product, 0, len(raw))
	for i, r := range raw {
		p := &catalogv1.Product{}
		if err := protojson.Unmarshal(r, p); err != nil {
			return nil, fmt.Errorf("seed catalog: product %d: %w", i, err)
		}
		if err := validateProduct(p); err != nil {
			return nil, fmt.Errorf("seed catalog: product %d: %w", i, err)
		}
		out = append(out, fromProto(p, now))
	}
	return out, nil
}

// NewServer builds the replica's gRPC and admin server from cfg.Serve, with
// s's services registered: every method but PublicMethods needs a valid
// token, each caller is rate-limited (cfg.RateLimit), and the replica is
// ready once authsvc's key set is loaded. extra options come after these
// (their interceptors run inside the rate limit); mains pass none.
func (s *Service) NewServer(extra ...serve.Option) (*serve.Server, error) {
	opts := []serve.Option{
		serve.WithAuth(s.AuthFunc(), PublicMethods),
		serve.WithReadiness("authsvc key set", s.Ready),
		serve.WithReadiness("store", s.db.Ping),
		serve.WithCollectors(s.validator.Collectors()...),
	}
	if s.cfg.RateLimit > 0 {
		lim, err := ratelimit.New(s.cfg.RateLimit, s.cfg.RateBurst, s.cfg.RateLimitCallers, grpcauth.CallerKey(s.cfg.TrustedProxyHops))
		if err != nil {
			return nil, err
		}
		opts = append(opts, serve.WithUnaryInterceptors(rateLimitInterceptor(lim)))
	}
	srv, err := serve.New(s.cfg.Serve, append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	s.Register(srv.GRPC())
	return srv, nil
}

// rateLimitInterceptor is go-grpc-middleware's rate limit with lim, for
// every method but gRPC health: it runs after authentication, so lim keys
// authenticated calls by token subject and public ones by client IP.
// Probes (from the kubelet's address, or any other) are never limited: a
// refused probe would take the replica out of service, which is what a
// flood must not achieve. catalogsvc has no streaming methods, so health
// Watch is the only stream and needs no limiter.
func rateLimitInterceptor(lim *ratelimit.PerCaller) grpc.UnaryServerInterceptor {
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	return selector.UnaryServerInterceptor(grpcratelimit.UnaryServerInterceptor(lim), notHealth)
}

// Serve runs srv until ctx is done, and s's background work for as long as
// srv serves (through the drain, so tokens are still checked against a
// fresh key set and revocation feed until the last call). It returns srv's
// error.
func (s *Service) Serve(ctx context.Context, srv *serve.Server) error {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- s.Run(bg) }()
	err := srv.Run(ctx)
	stop()
	return errors.Join(err, <-done)
}
