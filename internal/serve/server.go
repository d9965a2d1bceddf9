// Package serve is the one way tokencart builds and runs a gRPC server: the
// interceptor chain (metrics, logging, panic recovery, authentication), gRPC
// health and reflection, keepalive and message limits, an admin HTTP server,
// optional OpenTelemetry tracing, and a graceful drain on shutdown.
//
// Typical use in a main:
//
//	srv, err := serve.New(cfg, serve.WithAuth(authFn, public), serve.WithReadiness("db", db.Ping))
//	catalogv1.RegisterCatalogServiceServer(srv.GRPC(), handler)
//	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
//	defer stop()
//	err = srv.Run(ctx)
//
// Authentication: with [WithAuth], every method is authenticated except the
// public list and the health and reflection services; without it, none is.
//
// The admin server serves /metrics (a registry private to the Server),
// /healthz (liveness: always 200 while serving), /readyz (the readiness
// checks), /debug/pprof/ when enabled, and the [WithHTTPHandler] routes.
// It is private (Prometheus, the kubelet). Documents meant for anyone, such
// as a discovery document and its JWKS, go on a third, public listener
// instead: [WithPublicHTTP].
//
// Transport security: with [Config.TLSCertFile] and [Config.TLSKeyFile] the
// gRPC port serves TLS 1.3 only, and with [Config.TLSClientCAFile] it
// requires client certificates (mutual TLS); see the tlsconfig package. The
// admin port is always plaintext HTTP (see [Config.TLSCertFile] for why).
//
// A request that gRPC cannot decode fails with Internal before the unary
// interceptors run; the handlers registered through [Server.GRPC] count it
// in tokencart_grpc_malformed_requests_total and log it, at most once a
// second. Its reason label tells a string field that is not UTF-8
// ("invalid_utf8": the API is proto3, whose strings must be UTF-8, and
// gRPC-Go's codec refuses them) from other malformed protobuf
// ("wire_format").
//
// Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set (see the
// OpenTelemetry SDK environment variables). Otherwise no span is recorded,
// but a caller's W3C trace context is still continued, so log lines and
// metric exemplars carry its trace ID.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

// adminShutdownTimeout bounds the admin HTTP server's shutdown, which comes
// after the gRPC drain.
const adminShutdownTimeout = 5 * time.Second

// Server is a gRPC server plus its admin HTTP server. Build it with [New],
// register services on [Server.GRPC], then call [Server.Run] once.
type Server struct {
	cfg          Config
	log          *slog.Logger
	grpc         *grpc.Server
	admin        *http.Server
	publicHTTP   *http.Server // nil without WithPublicHTTP
	publicListen string       // WithPublicHTTP's address
	metrics      *grpcprom.ServerMetrics
	malformed    *malformedRequests // nil only in benchmarks that measure without it
	registry     *prometheus.Registry
	health       *health.Server
	checks       []readinessCheck
	pollInterval time.Duration
	stopTracing  func(context.Context) error

	public         map[string]bool // full method names exempt from auth
	publicServices map[string]bool // service names exempt from auth
	authEnabled    bool

	started  atomic.Bool // Run has been called
	draining atomic.Bool // shutdown has begun; /readyz fails
	// stopCtx is cancelled when GracefulStop begins; it ends every stream
	// (endStreamsAtStop).
	stopCtx     context.Context
	stopStreams context.CancelFunc
	background  []func(context.Context) error
	ready       chan struct{} // closed once the listeners are bound

	// Written by Run before ready is closed, read-only afterwards.
	grpcAddr, adminAddr, publicAddr string
	services                        []string // health status names: "" and every registered service

	// Owned by Run's goroutine, then by the readiness poller.
	lastStatus  healthpb.HealthCheckResponse_ServingStatus
	everReady   bool      // some check run found the server ready
	warnedStart bool      // "still not ready" has been logged
	startTime   time.Time // when Run began serving
}

// New builds a Server from cfg (zero fields take their defaults) and opts.
// The OTLP trace exporter, if enabled, is released by Run, so Run must be
// called on every Server that New returns.
func New(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := &options{pollInterval: defaultPollInterval}
	for _, opt := range opts {
		opt(o)
	}
	if cfg.Logger == nil {
		cfg.Logger = cfg.NewLogger(os.Stderr)
	}
	s := &Server{
		cfg:            cfg,
		log:            cfg.Logger,
		registry:       prometheus.NewRegistry(),
		health:         health.NewServer(),
		checks:         o.checks,
		pollInterval:   o.pollInterval,
		public:         make(map[string]bool),
		publicServices: make(map[string]bool),
		authEnabled:    o.authFn != nil,
		background:     o.background,
		ready:          make(chan struct{}),
	}
	s.stopCtx, s.stopStreams = context.WithCancel(context.Background())
	if o.authSet && o.authFn == nil {
		return nil, errors.New("serve: WithAuth needs a non-nil auth function")
	}
	if err := s.setPublic(o); err != nil {
		return nil, err
	}
	for _, c := range o.checks {
		if c.name == "" || c.check == nil {
			return nil, errors.New("serve: a readiness check needs a name and a function")
		}
	}

	s.metrics = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	if err := errors.Join(
		s.registry.Register(s.metrics),
		s.registry.Register(collectors.NewGoCollector()),
		s.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return nil, fmt.Errorf("serve: register metrics: %w", err)
	}
	for _, c := range o.collectors {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("serve: register metrics: %w", err)
		}
	}
	if !o.noMalformed {
		malformed, err := newMalformedRequests(s.log, s.registry)
		if err != nil {
			return nil, fmt.Errorf("serve: register metrics: %w", err)
		}
		s.malformed = malformed
	}

	admin, err := s.newAdminServer(s.registry, cfg.EnablePprof, o.routes)
	if err != nil {
		return nil, err
	}
	s.admin = admin
	if o.public != nil {
		if err := ValidateAddr("public HTTP address", o.public.addr); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		if o.public.handler == nil {
			return nil, errors.New("serve: WithPublicHTTP needs a non-nil handler")
		}
		s.publicHTTP, s.publicListen = s.newPublicServer(o.public.handler), o.public.addr
	}

	tp, stopTracing, err := newTracerProvider(context.Background(), cfg.Name)
	if err != nil {
		return nil, err
	}
	s.stopTracing = stopTracing

	tracing := tracingEnabled()
	unary, stream := s.chain(o, s.metrics, tracing)
	serverOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      cfg.MaxConnectionAge,
			MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace,
			Time:                  time.Minute,      // ping a connection idle this long...
			Timeout:               20 * time.Second, // ...and close it if the ping is not answered
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(MaxHeaderListSize),
	}
	if tracing {
		serverOpts = append(serverOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics come from Prometheus
			otelgrpc.WithPropagators(propagator),
			otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
		)))
	}
	tlsCfg, err := cfg.serverTLS()
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if tlsCfg != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s.grpc = grpc.NewServer(append(serverOpts, o.serverOpts...)...)
	healthpb.RegisterHealthServer(s.registrar(), s.health)
	reflection.Register(s.registrar())
	for _, svc := range o.services {
		s.registrar().RegisterService(svc.desc, svc.impl)
	}
	return s, nil
}

func (s *Server) setPublic(o *options) error {
	// Probes and tooling (Kubernetes gRPC probes, grpcurl) call these
	// without a token.
	for _, svc := range []string{
		healthpb.Health_ServiceDesc.ServiceName,
		reflectionv1.ServerReflection_ServiceDesc.ServiceName,
		reflectionv1alpha.ServerReflection_ServiceDesc.ServiceName,
	} {
		s.publicServices[svc] = true
	}
	for _, m := range o.publicMethods {
		svc, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		if !strings.HasPrefix(m, "/") || !ok || svc == "" || method == "" || strings.Contains(method, "/") {
			return fmt.Errorf("serve: public method %q is not a full method name like /pkg.Service/Method", m)
		}
		s.public[m] = true
	}
	return nil
}

// GRPC returns what services register on before Run, e.g.
// catalogv1.RegisterCatalogServiceServer(srv.GRPC(), h): the gRPC server,
// through a registrar that counts and logs the requests gRPC cannot decode
// (which fail before any interceptor runs).
func (s *Server) GRPC() grpc.ServiceRegistrar { return s.registrar() }

func (s *Server) registrar() registrar {
	return registrar{grpc: s.grpc, malformed: s.malformed}
}

// Metrics returns the registry served on /metrics, for services to add
// their own collectors.
func (s *Server) Metrics() prometheus.Registerer { return s.registry }

// PublicMethods returns the sorted full method names exempt from
// authentication, or nil without [WithAuth] (when every method is public).
// The health and reflection services are always public and not listed.
func (s *Server) PublicMethods() []string {
	if !s.authEnabled {
		return nil
	}
	m := make([]string, 0, len(s.public))
	for name := range s.public {
		m = append(m, name)
	}
	slices.Sort(m)
	return m
}

// Ready returns a channel closed once Run has bound both listeners.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// GRPCAddr returns the bound gRPC address; valid once Ready is closed.
func (s *Server) GRPCAddr() string { return s.grpcAddr }

// AdminAddr returns the bound admin HTTP address; valid once Ready is closed.
func (s *Server) AdminAddr() string { return s.adminAddr }

// PublicAddr returns the bound address of the [WithPublicHTTP] listener,
// or "" without one; valid once Ready is closed.
func (s *Server) PublicAddr() string { return s.publicAddr }

// serveResult is what a Serve goroutine reports when it returns.
type serveResult struct {
	what string
	err  error
}

// Run listens on both addresses, starts the [WithBackground] work, serves
// until ctx is done, then drains: every health status turns NOT_SERVING and
// /readyz fails, the server keeps serving for DrainDelay, then GracefulStop
// (every open stream ends, Unavailable; the stop is bounded by
// ShutdownTimeout, then Stop), then the background work, the admin server
// and the tracer stop.
//
// Run returns nil after a clean drain, and an error if a listener cannot be
// bound, a public method is not registered, a server fails while serving or
// background work fails (after which the rest is shut down too). It may be
// called once.
func (s *Server) Run(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("serve: Run called more than once")
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminShutdownTimeout)
		defer cancel()
		if terr := s.stopTracing(tctx); terr != nil {
			err = errors.Join(err, fmt.Errorf("serve: flush traces: %w", terr))
		}
	}()

	info := s.grpc.GetServiceInfo()
	if err := s.checkPublicRegistered(info); err != nil {
		return err
	}
	var lc net.ListenConfig
	gl, err := lc.Listen(ctx, "tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("serve: listen for gRPC: %w", err)
	}
	al, err := lc.Listen(ctx, "tcp", s.cfg.AdminAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("serve: listen for admin HTTP: %w", err)
	}
	var pl net.Listener
	if s.publicHTTP != nil {
		if pl, err = lc.Listen(ctx, "tcp", s.publicListen); err != nil {
			gl.Close()
			al.Close()
			return fmt.Errorf("serve: listen for public HTTP: %w", err)
		}
		s.publicAddr = pl.Addr().String()
	}
	s.grpcAddr, s.adminAddr = gl.Addr().String(), al.Addr().String()

	s.services = []string{""}
	for name := range info {
		s.services = append(s.services, name)
	}
	slices.Sort(s.services)
	s.metrics.InitializeMetrics(s.grpc)
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	var background sync.WaitGroup
	bgFailed := make(chan error, len(s.background))
	for _, fn := range s.background {
		background.Go(func() {
			if err := fn(bgCtx); err != nil {
				bgFailed <- err
			}
		})
	}
	s.startTime = time.Now()
	s.refreshHealth(ctx)
	close(s.ready)

	results := make(chan serveResult, 3)
	pending := 2
	go func() { results <- serveResult{"gRPC server", s.grpc.Serve(gl)} }()
	go func() { results <- serveResult{"admin HTTP server", s.admin.Serve(al)} }()
	if pl != nil {
		pending++
		go func() { results <- serveResult{"public HTTP server", s.publicHTTP.Serve(pl)} }()
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var poller sync.WaitGroup
	poller.Go(func() { s.pollReadiness(pollCtx) })
	s.log.InfoContext(ctx, "serving", "grpc_addr", s.grpcAddr, "grpc_transport", s.cfg.tlsMode(), "admin_addr", s.adminAddr,
		"public_addr", s.publicAddr)

	var errs []error
	select {
	case <-ctx.Done():
		s.log.InfoContext(ctx, "shutting down", "drain_delay", s.cfg.DrainDelay.String())
	case r := <-results:
		// Serve only returns before shutdown on failure.
		pending--
		errs = append(errs, fmt.Errorf("serve: %s: %w", r.what, orStopped(r.err)))
		s.log.WarnContext(ctx, "shutting down: "+r.what+" failed")
	case err := <-bgFailed:
		errs = append(errs, fmt.Errorf("serve: background work: %w", err))
		s.log.WarnContext(ctx, "shutting down: background work failed", "error", err)
	}
	stopPolling()
	s.shutdown(ctx, len(errs) == 0)
	poller.Wait()
	stopBackground()
	background.Wait()
	close(bgFailed)
	for err := range bgFailed {
		errs = append(errs, fmt.Errorf("serve: background work: %w", err))
	}
	for ; pending > 0; pending-- {
		r := <-results
		if r.err != nil && !errors.Is(r.err, grpc.ErrServerStopped) && !errors.Is(r.err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %s: %w", r.what, r.err))
		}
	}
	if len(errs) == 0 {
		s.log.InfoContext(ctx, "stopped")
	}
	return errors.Join(errs...)
}

// orStopped turns the nil or "closed" error of a server that stopped on its
// own into an error saying so.
func orStopped(err error) error {
	if err == nil || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, http.ErrServerClosed) {
		return errors.New("stopped unexpectedly")
	}
	return err
}

// checkPublicRegistered fails if a public method names no registered method:
// a typo there would silently leave the intended method authenticated.
func (s *Server) checkPublicRegistered(info map[string]grpc.ServiceInfo) error {
	var errs []error
	for m := range s.public {
		svc, method, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		if !slices.ContainsFunc(info[svc].Methods, func(mi grpc.MethodInfo) bool { return mi.Name == method }) {
			errs = append(errs, fmt.Errorf("serve: public method %s is not registered", m))
		}
	}
	return errors.Join(errs...)
}

// shutdown drains and stops both servers. With drain false (a server already
// failed) it skips DrainDelay.
func (s *Server) shutdown(ctx context.Context, drain bool) {
	s.draining.Store(true)
	s.health.Shutdown() // every status NOT_SERVING, and later updates ignored
	if drain && s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		<-t.C
	}

	s.stopStreams()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.WarnContext(ctx, "graceful stop timed out, cancelling in-flight calls", "timeout", s.cfg.ShutdownTimeout.String())
		s.grpc.Stop()
		<-stopped
	}

	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range []*http.Server{s.admin, s.publicHTTP} {
		if h == nil {
			continue
		}
		wg.Go(func() {
			if err := h.Shutdown(actx); err != nil {
				// Idle connections outlived the timeout; close them.
				_ = h.Close()
			}
		})
	}
	wg.Wait()
}
