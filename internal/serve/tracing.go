package serve

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// newTracerProvider returns an OTLP/gRPC-exporting tracer provider when
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set
// and OTEL_SDK_DISABLED is not true; otherwise a no-op provider. The exporter
// reads the standard OTEL_* variables (insecure, headers, sampler...). The
// returned function flushes and stops it.
//
// The provider is handed to otelgrpc explicitly; the OpenTelemetry globals
// are left alone so servers built in one process (tests) stay independent.
func newTracerProvider(ctx context.Context, name string) (trace.TracerProvider, func(context.Context) error, error) {
	noShutdown := func(context.Context) error { return nil }
	if !tracingEnabled() {
		return tracenoop.NewTracerProvider(), noShutdown, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", name)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: tracing resource: %w", err)
	}
	// The exporter connects lazily; New does not block on the collector.
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// tracingEnabled reports whether the environment asks for spans to be
// exported (see newTracerProvider).
func tracingEnabled() bool {
	disabled, _ := strconv.ParseBool(os.Getenv("OTEL_SDK_DISABLED"))
	return !disabled && (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "")
}

// propagator reads and writes the W3C trace context and baggage headers.
// It holds no state; it is a variable only because Go has no constant
// structs.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// With tracing off, no span is recorded, so the otelgrpc stats handler is
// not installed: on every call it copied the whole request metadata twice
// (its own extraction, and gRPC's InHeader event for stats handlers) and
// built span attributes for a no-op tracer, a sizeable share of the server
// CPU of an authenticated call (bench/RESULTS.md). These interceptors keep
// what it still gave: the caller's trace context in the call's context, for
// the trace IDs of log lines and metric exemplars.

// withTraceContextThen returns next, run with the caller's trace context.
func withTraceContextThen(next grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return next(withTraceContext(ctx), req, info, handler)
	}
}

func streamTraceContext(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if tc := withTraceContext(ctx); tc != ctx {
		ss = contextStream{ServerStream: ss, ctx: tc}
	}
	return handler(srv, ss)
}

// withTraceContext returns ctx with the trace context (and baggage) of a
// request that carries a traceparent, or ctx itself, without copying the
// metadata, for the many that do not. Baggage alone is left out: without
// a trace it labels nothing in logs or metrics.
func withTraceContext(ctx context.Context) context.Context {
	if len(metadata.ValueFromIncomingContext(ctx, "traceparent")) == 0 {
		return ctx
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return propagator.Extract(ctx, metadataCarrier(md))
}

// metadataCarrier reads gRPC metadata for a propagator.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
