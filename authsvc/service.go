package authsvc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/token"
)

// PublicMethods are the AuthService methods callable without an access
// token. Every other method requires one (serve.WithAuth is fail-closed),
// except ServiceMethods.
var PublicMethods = []string{
	authv1.AuthService_Register_FullMethodName,
	authv1.AuthService_Login_FullMethodName,
	authv1.AuthService_RefreshToken_FullMethodName,
	authv1.AuthService_GetKeySet_FullMethodName,
}

// ServiceMethods are the AuthService methods for services: they require a
// service identity (a service credential, or an allowed client
// certificate), never a user's token.
var ServiceMethods = []string{
	authv1.AuthService_IntrospectToken_FullMethodName,
	authv1.AuthService_WatchRevocations_FullMethodName,
}

// Service implements authv1.AuthServiceServer, and grpcauth.Authenticator
// for its own authenticated methods. Any number of replicas may share one
// Store; a Service holds no state another replica would need.
type Service struct {
	authv1.UnimplementedAuthServiceServer

	cfg      Config
	store    Store
	log      *slog.Logger
	now      func() time.Time
	hasher   *hasher
	keys     *keyManager
	verifier *token.Verifier
	feed     *revocationFeed
	services *grpcauth.Services
	guard    *grpcauth.Guard
	streams  *streamLimiter
	refusals *refusals
	metrics  *metrics
	// dummyHash is checked against for unknown emails, so that they cost
	// as much as a wrong password.
	dummyHash string

	statuses *rpcerr.Mapper
	// public serves the discovery document and the JWKS.
	public http.Handler
}

// New returns a Service over store, which it does not close. It loads the
// signing keys (creating the first one in an empty store, and encrypting
// stored ones that are not when a key-encryption key is set) and sets up
// the bootstrap admin, so a Service that New returns can sign at once.
// Call Run to keep keys, revocations and pruning going.
func New(ctx context.Context, cfg Config, store Store, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kek, err := cfg.kek()
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	services, err := cfg.services()
	if err != nil {
		return nil, err
	}
	guard, err := grpcauth.NewGuard(cfg.Guard)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		store:    store,
		log:      log,
		now:      now,
		hasher:   newHasher(cfg.Argon2, cfg.HashConcurrency, cfg.HashQueueTimeout),
		feed:     newRevocationFeed(),
		services: services,
		guard:    guard,
		streams:  newStreamLimiter(cfg.RevocationStreamsPerConnection, cfg.MaxRevocationStreams),
		refusals: newRefusals(),
		metrics:  newMetrics(),
		statuses: newErrorMapper(log),
	}
	if kek == nil {
		log.Warn("NO --key-encryption-key (AUTHSVC_KEY_ENCRYPTION_KEY): private signing keys are stored UNENCRYPTED; acceptable for development only")
	}
	if !services.Configured() {
		log.Warn("no --service-credentials or --service-identities: WatchRevocations and IntrospectToken refuse every caller, so services cannot follow revocations")
	}
	if s.keys, err = newKeyManager(store, kek, &cfg, now, log); err != nil {
		return nil, err
	}
	if err := s.keys.encryptStored(ctx); err != nil {
		return nil, err
	}
	if s.verifier, err = token.NewVerifier(token.VerifierConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, Keys: s.keys, Now: now,
	}); err != nil {
		return nil, err
	}
	if err := s.keys.refresh(ctx); err != nil {
		return nil, err
	}
	if s.dummyHash, err = s.hasher.hash(ctx, rand.Text()); err != nil {
		return nil, fmt.Errorf("dummy password hash: %w", err)
	}
	if cfg.BootstrapAdmin != "" {
		if err := s.bootstrapAdmin(ctx); err != nil {
			return nil, err
		}
	}
	if s.public, err = s.newPublicHandler(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeOptions are the service's part of its server: the AuthService;
// authentication of every method but PublicMethods; errors mapped to
// statuses once, at the edge; the discovery document and the JWKS on the
// public listener; a store readiness check; and Run for as long as the
// server serves.
func (s *Service) ServeOptions() []serve.Option {
	return []serve.Option{
		serve.WithService(&authv1.AuthService_ServiceDesc, s),
		serve.WithAuth(s.authFunc(), PublicMethods),
		serve.WithUnaryInterceptors(s.statuses.UnaryServerInterceptor()),
		serve.WithStreamInterceptors(s.statuses.StreamServerInterceptor()),
		serve.WithPublicHTTP(s.cfg.PublicAddr, s.public),
		serve.WithReadiness("store", s.store.Ping),
		serve.WithCollectors(slices.Concat(s.metrics.collectors(), s.keys.collectors(), s.guard.Collectors())...),
		serve.WithBackground(s.Run),
	}
}

// Run keeps the replica current until ctx is done: it reloads (and when
// due rotates) the signing keys, follows the revocations of other replicas
// and prunes expired rows. Store errors are logged and retried at the next
// tick. It returns nil when ctx is done.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	every := func(d time.Duration, what string, f func(context.Context) error) {
		wg.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := f(ctx); err != nil && ctx.Err() == nil {
					s.log.WarnContext(ctx, what+" failed", "error", err)
				}
			}
		})
	}
	every(s.cfg.KeyReloadInterval, "signing key reload", s.keys.refresh)
	every(s.cfg.RevocationPollInterval, "revocation poll", s.pollRevocations)
	every(s.cfg.PruneInterval, "prune", s.prune)
	wg.Wait()
	return nil
}

func (s *Service) prune(ctx context.Context) error {
	now := s.now()
	return s.store.Prune(ctx, PruneTimes{
		Now:                  now,
		RevokedBefore:        now.Add(-token.MaxLeeway),
		FailuresBefore:       now.Add(-s.cfg.LoginThrottleWindow),
		LoginAddressesBefore: now.Add(-s.cfg.LoginAddressMemory),
	})
}

// authFunc authenticates the calls of every method but PublicMethods: a
// service identity for ServiceMethods, an access token for the others.
func (s *Service) authFunc() auth.AuthFunc {
	user, service := grpcauth.AuthFunc(s), s.services.AuthFunc()
	return func(ctx context.Context) (context.Context, error) {
		if m, _ := grpc.Method(ctx); slices.Contains(ServiceMethods, m) {
			return service(ctx)
		}
		return user(ctx)
	}
}

// Authenticate implements grpcauth.Authenticator: the token must verify
// with the published keys and not be revoked. Revocation is read from the
// store on every call, so a token revoked on any replica is refused at once
// by all; the methods that need authentication here are few and each one
// reads the store anyway. A caller that keeps failing meets the Guard
// before any signature check.
func (s *Service) Authenticate(ctx context.Context, raw string) (token.Claims, error) {
	attempt, err := s.guard.Check(ctx, raw)
	if err != nil {
		return token.Claims{}, err
	}
	c, err := s.verifier.Verify(raw)
	if err != nil {
		attempt.Failed(err)
		return token.Claims{}, err
	}
	revoked, err := s.store.IsRevoked(ctx, tokenRef(c))
	if err != nil {
		return token.Claims{}, s.statuses.Status(ctx, fmt.Errorf("check revocation: %w", err))
	}
	if revoked {
		return token.Claims{}, errors.New("token revoked")
	}
	return c, nil
}

// caller returns the authenticated caller's claims.
func caller(ctx context.Context) (token.Claims, error) {
	c, ok := grpcauth.ClaimsFrom(ctx)
	if !ok {
		return token.Claims{}, errUnauthenticated
	}
	return c, nil
}
