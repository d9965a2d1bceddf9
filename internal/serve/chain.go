package serve

import (
	"context"
	"fmt"
	"runtime/debug"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
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
//  2. logging: one line per finished call (health checks at debug; refusals
//     at most ten a second), with the code and, for a panic, its value and
//     stack — never payloads or metadata;
//     2a. (streams) every stream ends, Unavailable, when GracefulStop
//     begins (streams.go);
//  3. recovery: turns a panic anywhere below into codes.Internal. It sits
//     here rather than innermost so panics in the auth func and the extra
//     interceptors are caught too, and still logged and counted above;
//  4. auth, skipped for public methods (only with WithAuth);
//  5. UTF-8: every string of a request is valid UTF-8, or INVALID_ARGUMENT
//     (utf8.go); after auth, so an anonymous caller learns nothing more;
//  6. the extra interceptors from WithUnaryInterceptors/WithStreamInterceptors.
func (s *Server) chain(o *options, metrics *grpcprom.ServerMetrics, tracing bool) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	exemplar := grpcprom.WithExemplarFromContext(traceExemplar)
	logger := callLogger{log: s.log}
	if !s.cfg.LogAllRefusals {
		logger.refusals = &logLimiter{interval: refusalLogInterval}
	}
	rec := recovery.WithRecoveryHandlerContext(s.recoverPanic)

	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if !tracing {
		unary = append(unary, unaryTraceContext)
		stream = append(stream, streamTraceContext)
	}
	unary = append(unary,
		metrics.UnaryServerInterceptor(exemplar),
		logger.unary,
		recovery.UnaryServerInterceptor(rec),
	)
	stream = append(stream,
		metrics.StreamServerInterceptor(exemplar),
		logger.stream,
		s.endStreamsAtStop,
		recovery.StreamServerInterceptor(rec),
	)
	if o.authFn != nil {
		needsAuth := selector.MatchFunc(s.needsAuth)
		unary = append(unary, selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(o.authFn), needsAuth))
		stream = append(stream, selector.StreamServerInterceptor(auth.StreamServerInterceptor(o.authFn), needsAuth))
	}
	unary = append(unary, unaryUTF8)
	stream = append(stream, streamUTF8)
	return append(unary, o.unary...), append(stream, o.stream...)
}

// needsAuth reports whether a call must be authenticated.
func (s *Server) needsAuth(_ context.Context, c interceptors.CallMeta) bool {
	return !s.public[c.FullMethod()] && !s.publicServices[c.Service]
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
