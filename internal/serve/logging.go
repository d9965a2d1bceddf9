package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callLogger is the logging interceptor: a "finished call" line for each
// call the logging policy (logpolicy.go) picks out, at the level it gives,
// never with payloads or metadata. By default a call that succeeds in good
// time has no line (the metrics count it); failures and slow calls do.
//
// It writes the fields go-grpc-middleware's logging interceptor writes,
// under the same names, and keeps that package's per-call fields in the
// context, so logging.AddFields (the recovery handler, authsvc's error
// details) still adds to the call's line. It replaces that interceptor
// because of what it costs: it built every field (two time.Format, the peer
// address, several copies of the field list) on every call, logged or not,
// a sizeable share of the server CPU of a no-op call (bench/RESULTS.md).
// Here a call whose line is not written costs one context value, and a
// logged one builds its fields once.
//
// Refusals a caller can provoke at will and cheaply (Unauthenticated,
// PermissionDenied, ResourceExhausted: bad or missing tokens, limits) are
// logged at most ten lines a second per server, each saying how many were
// left out before it: a flood of them must not cost a log line (and disk)
// each. The metrics still count every one. Config.LogAllRefusals logs
// them all.
type callLogger struct {
	log      *slog.Logger
	policy   logPolicy
	refusals *logLimiter // nil: every refusal is logged
	// next, if set, is the unary interceptor that runs inside this one
	// (recovery): called directly, it is not a level of gRPC's chain.
	next grpc.UnaryServerInterceptor
}

// refusalLogInterval is the least time between two logged refusals.
const refusalLogInterval = 100 * time.Millisecond

// refusal reports whether calls that end with code are refusals whose lines
// are limited.
func refusal(code codes.Code) bool {
	return code == codes.Unauthenticated || code == codes.PermissionDenied || code == codes.ResourceExhausted
}

func (l callLogger) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ctx = logging.InjectFields(ctx, logging.Fields{})
	var resp any
	var err error
	if l.next != nil {
		resp, err = l.next(ctx, req, info, handler)
	} else {
		resp, err = handler(ctx, req)
	}
	l.finished(ctx, info.FullMethod, "unary", start, err)
	return resp, err
}

func (l callLogger) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx := logging.InjectFields(ss.Context(), logging.Fields{})
	err := handler(srv, contextStream{ServerStream: ss, ctx: ctx})
	l.finished(ctx, info.FullMethod, streamType(info), start, err)
	return err
}

func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}

// finished logs the call's line, if the logger takes its level.
func (l callLogger) finished(ctx context.Context, fullMethod, methodType string, start time.Time, err error) {
	if errors.Is(err, io.EOF) {
		err = nil
	}
	code := status.Code(err)
	elapsed := time.Since(start)
	slow := l.policy.isSlow(methodType, elapsed)
	level := l.policy.level(code, slow, ctx.Err() != nil)
	if !l.log.Enabled(ctx, level) {
		return
	}
	suppressed := 0
	if l.refusals != nil && refusal(code) {
		var ok bool
		if ok, suppressed = l.refusals.allow(time.Now()); !ok {
			return
		}
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	extra := logging.ExtractFields(ctx)
	fields := make([]any, 0, 24+len(extra))
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		fields = append(fields, "trace_id", sc.TraceID().String())
	}
	fields = append(fields,
		"protocol", "grpc",
		"grpc.component", "server",
		"grpc.service", service,
		"grpc.method", method,
		"grpc.method_type", methodType,
	)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		fields = append(fields, "peer.address", p.Addr.String())
	}
	fields = append(fields, "grpc.start_time", start.Format(time.RFC3339))
	if d, ok := ctx.Deadline(); ok {
		fields = append(fields, "grpc.request.deadline", d.Format(time.RFC3339))
	}
	fields = append(fields, extra...)
	fields = append(fields, "grpc.code", code.String())
	if err != nil {
		fields = append(fields, "grpc.error", err.Error())
	}
	// Milliseconds with microsecond precision, as a string, as before.
	ms := float32(elapsed.Microseconds()) / 1000
	fields = append(fields, "grpc.time_ms", strconv.FormatFloat(float64(ms), 'f', -1, 32))
	if slow {
		fields = append(fields, "grpc.slow", true)
	}
	if suppressed > 0 {
		fields = append(fields, "refusals_not_logged", suppressed)
	}
	l.log.Log(ctx, level, "finished call", fields...)
}

// contextStream is a server stream whose Context is ctx.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s contextStream) Context() context.Context { return s.ctx }
