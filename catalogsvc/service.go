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
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/ratelimit"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/serve"
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

// Service is one catalogsvc replica: the gRPC handlers and the background
// work that keeps its caches fresh. Build it with New and serve it with
// serve.New(cfg.Serve, svc.ServeOptions()...).
type Service struct {
	cfg       Config
	log       *slog.Logger
	store     Store
	carts     cartBackend
	validator *grpcauth.Validator
	limiter   *ratelimit.PerCaller // nil when rate limiting is off
	statuses  *rpcerr.Mapper

	snap     atomic.Pointer[snapshot]
	reloadMu sync.Mutex // serialises snapshot reloads, so an older one never replaces a newer
}

// New returns the service over store, checking tokens with validator (see
// grpcauth.Dial), which it keeps fresh while it runs. It seeds the catalog
// on first start when cfg.Seed, and loads the catalog snapshot. The caller
// closes store and validator after the service has stopped.
func New(ctx context.Context, cfg Config, store Store, validator *grpcauth.Validator, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, store: store, validator: validator, statuses: newErrorMapper(log)}
	if cfg.Seed {
		seed, err := SeedProducts()
		if err != nil {
			return nil, err
		}
		seeded, err := store.SeedProducts(ctx, seed)
		if err != nil {
			return nil, err
		}
		if seeded {
			log.InfoContext(ctx, "seed catalog loaded", "products", len(seed))
		}
	}
	if err := s.refreshCatalog(ctx); err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	switch cfg.CartMode {
	case CartModeRequest:
		current, old, err := cfg.cartKeys()
		if err != nil {
			return nil, err
		}
		sealer, err := cartstate.New(current, old...)
		if err != nil {
			return nil, err
		}
		enc, err := cartstate.ParseEncoding(cfg.CartStateEncoding)
		if err != nil {
			return nil, err
		}
		s.carts = cartstate.NewCarts(sealer, enc)
	default:
		s.carts = storeCarts{store: store}
	}
	if cfg.RateLimit > 0 {
		lim, err := ratelimit.New(cfg.RateLimit, cfg.RateBurst, cfg.RateLimitCallers, grpcauth.CallerKey(cfg.Auth.Guard.TrustedProxyHops))
		if err != nil {
			return nil, err
		}
		s.limiter = lim
	}
	return s, nil
}

// ServeOptions are the service's part of its server: the catalog and cart
// services; every method but PublicMethods needs a valid token; each caller
// is rate-limited (cfg.RateLimit); errors are mapped to statuses once, at
// the edge; the replica is ready once authsvc's key set is loaded and the
// store answers; and Run goes on for as long as the server serves.
func (s *Service) ServeOptions() []serve.Option {
	unary := []grpc.UnaryServerInterceptor{}
	if s.limiter != nil {
		unary = append(unary, rateLimitInterceptor(s.limiter))
	}
	return []serve.Option{
		serve.WithService(&catalogv1.CatalogService_ServiceDesc, catalogServer{s: s}),
		serve.WithService(&catalogv1.CartService_ServiceDesc, cartServer{s: s}),
		serve.WithAuth(grpcauth.AuthFunc(s.validator), PublicMethods),
		serve.WithReadiness("authsvc key set", s.validator.Ready),
		serve.WithReadiness("store", s.store.Ping),
		serve.WithCollectors(s.validator.Collectors()...),
		serve.WithUnaryInterceptors(append(unary, s.statuses.UnaryServerInterceptor())...),
		serve.WithBackground(s.Run),
	}
}

// Run does the background work until ctx is done: the token validator's
// key-set refresh and revocation feed, the catalog poll, and (store mode)
// the pruning of expired idempotency keys. It returns nil when ctx is done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.validator.Run(ctx) })
	g.Go(func() error { return s.pollCatalog(ctx) })
	if s.cfg.CartMode == CartModeStore {
		g.Go(func() error { return s.pruneRequests(ctx) })
	}
	return g.Wait()
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
		n, err := s.store.PruneRequests(ctx, time.Now().Add(-requestRetention-time.Hour))
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
func SeedProducts() ([]Product, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(seedJSON, &raw); err != nil {
		return nil, fmt.Errorf("seed catalog: %w", err)
	}
	now := time.Now()
	out := make([]Product, 0, len(raw))
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

// rateLimitInterceptor is lim's interceptor, for every method but gRPC
// health: it runs after authentication, so lim keys
// authenticated calls by token subject and public ones by client IP.
// Probes (from the kubelet's address, or any other) are never limited: a
// refused probe would take the replica out of service, which is what a
// flood must not achieve. catalogsvc has no streaming methods, so health
// Watch is the only stream and needs no limiter.
func rateLimitInterceptor(lim *ratelimit.PerCaller) grpc.UnaryServerInterceptor {
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	return selector.UnaryServerInterceptor(lim.UnaryServerInterceptor(), notHealth)
}
