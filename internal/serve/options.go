package serve

import (
	"context"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Option customises a [Server] built by [New].
type Option func(*options)

type options struct {
	collectors    []prometheus.Collector
	authSet       bool
	authFn        auth.AuthFunc
	publicMethods []string
	checks        []readinessCheck
	routes        []route
	public        *publicListener
	unary         []grpc.UnaryServerInterceptor
	stream        []grpc.StreamServerInterceptor
	serverOpts    []grpc.ServerOption
	pollInterval  time.Duration
	services      []service
	background    []func(context.Context) error

	noMalformed bool // benchmarks only: register handlers unwrapped (malformed.go)
}

type readinessCheck struct {
	name  string
	check func(ctx context.Context) error
}

type service struct {
	desc *grpc.ServiceDesc
	impl any
}

type route struct {
	pattern string
	handler http.Handler
}

// WithAuth authenticates every call with fn (typically the grpcauth package's
// AuthFunc), except calls to the full method names in public (e.g.
// "/tokencart.auth.v1.AuthService/Login") and to the gRPC health and
// reflection services, which are always public. The list is fail-closed: a
// method missing from it requires authentication, and [Server.Run] fails if a
// public entry names no registered method.
//
// Without WithAuth there is no authentication at all: every method is public.
//
// A service implementation that has an AuthFuncOverride method (see
// go-grpc-middleware's auth.ServiceAuthFuncOverride) replaces fn for its
// non-public methods; tokencart services should not implement it.
func WithAuth(fn auth.AuthFunc, public []string) Option {
	return func(o *options) {
		o.authSet = true
		o.authFn = fn
		o.publicMethods = append([]string(nil), public...)
	}
}

// WithService registers impl as the implementation of desc, as
// [Server.GRPC] would: e.g. WithService(&authv1.AuthService_ServiceDesc, svc).
func WithService(desc *grpc.ServiceDesc, impl any) Option {
	return func(o *options) {
		o.services = append(o.services, service{desc: desc, impl: impl})
	}
}

// WithBackground runs fn for as long as the server serves: [Server.Run]
// starts it before listening and cancels its context once the gRPC server
// has stopped (after the drain, so work such as a key-set refresh goes on
// while the last calls finish), then waits for it. fn should return nil
// when its context is done; an error before that stops the server, as a
// failed listener does.
func WithBackground(fn func(ctx context.Context) error) Option {
	return func(o *options) {
		o.background = append(o.background, fn)
	}
}

// WithReadiness adds a readiness check (e.g. a database ping). The server is
// ready, and reports SERVING in gRPC health for every service, only while
// all checks pass; /readyz runs them on each request and names the first
// that fails. Checks should honour ctx (each run is bounded by a timeout)
// and be safe to call concurrently: the poller and /readyz both run them.
func WithReadiness(name string, check func(ctx context.Context) error) Option {
	return func(o *options) {
		o.checks = append(o.checks, readinessCheck{name: name, check: check})
	}
}

// WithHTTPHandler serves h for pattern (a [http.ServeMux] pattern) on the
// private admin port, e.g. "GET /debug/state". It must not clash with the
// built-in routes. Documents for anyone belong on [WithPublicHTTP].
func WithHTTPHandler(pattern string, h http.Handler) Option {
	return func(o *options) {
		o.routes = append(o.routes, route{pattern: pattern, handler: h})
	}
}

// publicListener is the public HTTP listener of [WithPublicHTTP].
type publicListener struct {
	addr    string
	handler http.Handler
}

// WithPublicHTTP serves h on a third listener at addr (host:port; port 0
// picks a free one, see [Server.PublicAddr]), plain HTTP, for documents
// anyone may read, such as an OpenID Connect discovery document and its
// JWKS. Unlike the admin port it carries no metrics, probes or pprof, so it
// can be exposed beyond the pod: Kubernetes Services, meshes, gateways. It
// starts and stops with the admin server: it keeps answering through the
// drain. h must be cheap and must not need authentication: nothing on this
// listener is rate limited.
func WithPublicHTTP(addr string, h http.Handler) Option {
	return func(o *options) {
		o.public = &publicListener{addr: addr, handler: h}
	}
}

// WithCollectors registers a service's own Prometheus metrics on the
// server's registry, served on /metrics with the server's.
func WithCollectors(cs ...prometheus.Collector) Option {
	return func(o *options) {
		o.collectors = append(o.collectors, cs...)
	}
}

// WithUnaryInterceptors appends unary interceptors to the chain, inside
// authentication (so they see the authenticated context) and inside panic
// recovery.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) {
		o.unary = append(o.unary, i...)
	}
}

// WithStreamInterceptors appends stream interceptors to the chain, inside
// authentication and panic recovery.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return func(o *options) {
		o.stream = append(o.stream, i...)
	}
}

// WithServerOptions adds grpc.ServerOptions. They are applied after the
// server's own options, so a grpc.Creds here replaces the TLS configured by
// [Config.TLSCertFile]; prefer the Config fields. Add interceptors with
// [WithUnaryInterceptors] and [WithStreamInterceptors] instead, so they run
// inside authentication and recovery.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) {
		o.serverOpts = append(o.serverOpts, opts...)
	}
}
