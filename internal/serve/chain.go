package serve

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/tokencart/tokencart/internal/rpcerr"
)

// errInternal is what a client sees when a handler panics; the panic itself
// goes to the log.
var errInternal = rpcerr.ErrInternal

// chain returns the server's interceptors, outermost first. With tracing
// on, the span is opened before them by the otelgrpc stats handler; with it
// off, the first interceptor only continues the caller's trace context.
//
//  0. trace context (tracing off): the caller's W3C trace context, so log
//     lines and metric exemplars still carry its trace ID;
//  1. metrics: counts and times every call, including rejected and panicking ones;
//  2. logging: a line per failed or slow call, or per call with the access
//     log on (logpolicy.go; refusals at most ten a second), with the code
//     and, for a panic, its value and stack — never payloads or metadata;
//     2a. (streams) every stream ends, Unavailable, when GracefulStop
//     begins (streams.go);
//  3. recovery: turns a panic anywhere below into codes.Internal. It sits
//     here rather than innermost so panics in the auth func and the extra
//     interceptors are caught too, and still logged and counted above;
//  4. auth, skipped for public methods (only with WithAuth);
//  5. the extra interceptors from WithUnaryInterceptors/WithStreamInterceptors.
func (s *Server) chain(o *options, metrics *grpcprom.ServerMetrics, tracing bool) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	exemplar := grpcprom.WithExemplarFromContext(traceExemplar)
	logger := callLogger{log: s.log, policy: logPolicy{accessLog: s.cfg.AccessLog, slow: s.cfg.LogSlowCalls}}
	if !s.cfg.LogAllRefusals {
		logger.refusals = &logLimiter{interval: refusalLogInterval}
	}
	rec := recovery.WithRecoveryHandlerContext(s.recoverPanic)

	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	// Each level of gRPC's chain allocates a closure per call; an
	// interceptor of ours that runs the next one itself, with the
	// chain's handler, saves that level: trace context runs metrics,
	// logging runs recovery.
	unaryMetrics := metrics.UnaryServerInterceptor(exemplar)
	if !tracing {
		unaryMetrics = withTraceContextThen(unaryMetrics)
		stream = append(stream, streamTraceContext)
	}
	logger.next = recovery.UnaryServerInterceptor(rec)
	unary = append(unary, unaryMetrics, logger.unary)
	stream = append(stream,
		metrics.StreamServerInterceptor(exemplar),
		logger.stream,
		s.endStreamsAtStop,
		recovery.StreamServerInterceptor(rec),
	)
	if o.authFn != nil {
		unary = append(unary, s.unaryAuth(auth.UnaryServerInterceptor(o.authFn)))
		stream = append(stream, s.streamAuth(auth.StreamServerInterceptor(o.authFn)))
	}
	return append(unary, o.unary...), append(stream, o.stream...)
}

// unaryAuth runs authenticate for the calls that need it. It does what
// go-grpc-middleware's selector does, on the method name gRPC gives,
// without the selector's parsing it into a CallMeta and joining it again
// for every call.
func (s *Server) unaryAuth(authenticate grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !s.needsAuth(info.FullMethod) {
			return handler(ctx, req)
		}
		return authenticate(ctx, req, info, handler)
	}
}

// streamAuth is unaryAuth for streams.
func (s *Server) streamAuth(authenticate grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !s.needsAuth(info.FullMethod) {
			return handler(srv, ss)
		}
		return authenticate(srv, ss, info, handler)
	}
}

// needsAuth reports whether a call of fullMethod ("/pkg.Service/Method")
// must be authenticated.
func (s *Server) needsAuth(fullMethod string) bool {
	service, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return !s.public[fullMethod] && !s.publicServices[service]
}

// recoverPanic is the recovery handler. It attaches the panic and its stack
// to the fields of the logging interceptor's "finished call" line, so the
// failure is logged once, at error level, with the call's other fields.
func (s *Server) recoverPanic(ctx context.Context, p any) error {
	fields := logging.Fields{"panic", fmt.Sprint(p), "stack", string(debug.Stack())}
	if logging.ExtractFields(ctx) != nil {
		logging.AddFields(ctx, fields)
	} else {
		method, _ := grpc.Method(ctx)
		s.log.ErrorContext(ctx, "recovered from panic", append(fields, "grpc.method", method)...)
	}
	return errInternal
}

// traceExemplar links metric samples of sampled calls to their trace.
func traceExemplar(ctx context.Context) prometheus.Labels {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		return prometheus.Labels{"trace_id": sc.TraceID().String()}
	}
	return nil
}
