package serve

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// What gRPC-Go (v1.85: server.go processRPC, wrapUnaryHandler; stream.go
// serverStream.RecvMsg; rpc_util.go recv) does with a request message its
// codec cannot decode:
//
//   - The call fails with codes.Internal and the message
//     "grpc: failed to unmarshal the received message: <codec error>", e.g.
//     "...: proto: cannot parse invalid wire-format data". protobuf-go's
//     errors name fields, never their values.
//   - Unary: the generated handler decodes the request (its dec argument)
//     before it calls the unary interceptors, so no interceptor runs: the
//     call is neither counted by the Prometheus interceptor nor logged by
//     callLogger.
//   - Server, client and bidi streams: RecvMsg decodes, called by the
//     handler inside the stream interceptors; a handler that returns Recv's
//     error has the call counted and logged as Internal like any failure.
//   - A stats.Handler sees both: TagRPC (FullMethodName), InHeader and
//     Begin, no InPayload, then *stats.End with Error set to that status
//     (grpc.Method works on its context). A call to an unknown method gets
//     TagRPC and InHeader but no End: gRPC answers Unimplemented first.
//
// Why not a stats.Handler: gRPC builds its events only when one is
// installed, and then on every call: a copy of the request metadata for
// InHeader, copies of the response header and trailer, and the event
// structs, whatever the handler ignores, which makes even a trivial unary
// call measurably slower and costlier in CPU (bench/RESULTS.md has the
// figures). Instead, [registrar] wraps each registered method's handler: a
// unary call costs one 48-byte closure, a stream one small struct, and a
// decode failure is seen where it happens, with the method known at
// registration, so the labels are bounded by the registered methods and
// calls to unknown methods (Unimplemented, or a grpc.UnknownServiceHandler's)
// are never counted.
//
// Other failures before the unary interceptors (a request too large:
// ResourceExhausted; bad compression, or no or several messages on a unary
// call: Internal) are not malformed protobuf and are not counted here.

// unmarshalFailure starts the status message of a call whose request gRPC
// could not decode (rpc_util.go's recv). TestMalformedRequest pins it, so a
// gRPC-Go upgrade that rewords it fails there rather than here, silently.
const unmarshalFailure = "grpc: failed to unmarshal the received message"

// invalidUTF8 is in the codec error of a request with a string field that
// is not UTF-8 (protobuf-go's "string field contains invalid UTF-8"): the
// API's protos are proto3, whose strings must be UTF-8, so gRPC-Go refuses
// such a request with INTERNAL before any interceptor or handler.
// TestInvalidUTF8 pins the text.
const invalidUTF8 = "invalid UTF-8"

// The values of the malformed-request counter's reason label.
const (
	reasonInvalidUTF8 = "invalid_utf8" // a string field that is not UTF-8
	reasonWireFormat  = "wire_format"  // any other decode failure
)

// maxDecodeErrorLen bounds the decode error text in a log line: a codec
// other than protobuf's might quote its input.
const maxDecodeErrorLen = 256

// malformedLogInterval is the most often a malformed request is logged per
// server; the line says how many went unlogged since the previous one.
const malformedLogInterval = time.Second

// malformedRequests counts the calls that failed because gRPC could not
// decode a request message, and logs the unary ones, which nothing else
// records, at most once per malformedLogInterval. It never logs payloads or
// metadata.
type malformedRequests struct {
	log     *slog.Logger
	counter *prometheus.CounterVec
	limiter logLimiter
}

// newMalformedRequests returns a malformedRequests whose counter is
// registered on reg.
func newMalformedRequests(log *slog.Logger, reg prometheus.Registerer) (*malformedRequests, error) {
	r := &malformedRequests{
		log: log,
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokencart_grpc_malformed_requests_total",
			Help: "Calls that failed because a request message could not be decoded, by method and reason (invalid_utf8: a string field that is not UTF-8; wire_format: anything else).",
		}, []string{"grpc_service", "grpc_method", "reason"}),
		limiter: logLimiter{interval: malformedLogInterval},
	}
	if err := reg.Register(r.counter); err != nil {
		return nil, err
	}
	return r, nil
}

// malformedMethod is a registered method, as malformedRequests reports it.
type malformedMethod struct {
	service, method string
	invalidUTF8     prometheus.Counter // reason="invalid_utf8"
	wireFormat      prometheus.Counter // reason="wire_format"
}

// count counts a call that failed with the decode error err.
func (m *malformedMethod) count(err error) {
	if strings.Contains(status.Convert(err).Message(), invalidUTF8) {
		m.invalidUTF8.Inc()
		return
	}
	m.wireFormat.Inc()
}

// wrap returns a copy of desc whose handlers report decode failures, and
// initialises the counters of its methods at zero.
func (r *malformedRequests) wrap(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	d := *desc
	d.Methods = slices.Clone(desc.Methods)
	d.Streams = slices.Clone(desc.Streams)
	for i := range d.Methods {
		d.Methods[i].Handler = r.unary(r.method(d.ServiceName, d.Methods[i].MethodName), d.Methods[i].Handler)
	}
	for i := range d.Streams {
		d.Streams[i].Handler = r.stream(r.method(d.ServiceName, d.Streams[i].StreamName), d.Streams[i].Handler)
	}
	return &d
}

func (r *malformedRequests) method(service, method string) *malformedMethod {
	return &malformedMethod{
		service:     service,
		method:      method,
		invalidUTF8: r.counter.WithLabelValues(service, method, reasonInvalidUTF8),
		wireFormat:  r.counter.WithLabelValues(service, method, reasonWireFormat),
	}
}

// unary returns h with its request decoding observed.
func (r *malformedRequests) unary(m *malformedMethod, h grpc.MethodHandler) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		return h(srv, ctx, func(req any) error {
			err := dec(req)
			if err != nil && isDecodeFailure(err) {
				m.count(err)
				r.logFailure(ctx, m, err)
			}
			return err
		}, interceptor)
	}
}

// stream returns h with the decoding of the messages it receives observed.
func (r *malformedRequests) stream(m *malformedMethod, h grpc.StreamHandler) grpc.StreamHandler {
	return func(srv any, ss grpc.ServerStream) error {
		return h(srv, &malformedStream{ServerStream: ss, m: m})
	}
}

// malformedStream counts the call if a message it receives cannot be
// decoded. It does not log: the logging interceptor logs the call's
// failure.
type malformedStream struct {
	grpc.ServerStream
	m       *malformedMethod
	counted bool // gRPC forbids concurrent RecvMsg calls
}

func (s *malformedStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err != nil && !s.counted && isDecodeFailure(err) {
		s.counted = true
		s.m.count(err)
	}
	return err
}

// isDecodeFailure reports whether err is gRPC's failure to decode a
// request message.
func isDecodeFailure(err error) bool {
	return status.Code(err) == codes.Internal && strings.HasPrefix(status.Convert(err).Message(), unmarshalFailure)
}

// logFailure writes the Warn line of a malformed unary request, unless one
// was written less than malformedLogInterval ago.
func (r *malformedRequests) logFailure(ctx context.Context, m *malformedMethod, err error) {
	if !r.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	ok, suppressed := r.limiter.allow(time.Now())
	if !ok {
		return
	}
	msg := status.Convert(err).Message()
	if len(msg) > maxDecodeErrorLen {
		msg = strings.ToValidUTF8(msg[:maxDecodeErrorLen], "") + "..."
	}
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	r.log.WarnContext(ctx, "malformed request",
		"grpc.service", m.service,
		"grpc.method", m.method,
		"peer.address", addr,
		"grpc.code", codes.Internal.String(),
		"grpc.error", msg,
		"suppressed", suppressed,
	)
}

// logLimiter allows one log line per interval and counts the lines it
// refuses. Its state is two fields, whatever the rate.
type logLimiter struct {
	interval time.Duration

	mu         sync.Mutex // guards next and suppressed
	next       time.Time  // the earliest time of the next line
	suppressed int        // lines refused since the last one allowed
}

// allow reports whether a line may be written at now and, if so, how many
// were refused since the previous one.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed = l.suppressed, 0
	l.next = now.Add(l.interval)
	return true, suppressed
}
