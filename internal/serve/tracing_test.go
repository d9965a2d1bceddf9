package serve_test

import (
	"context"
	"encoding/hex"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/tokencart/tokencart/internal/serve"
)

// fakeCollector is an OTLP trace collector that records span names and
// trace IDs.
type fakeCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex // guards spans
	spans []string   // "name traceID(hex)"
}

func (c *fakeCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName()+" "+hex.EncodeToString(s.GetTraceId()))
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Not parallel: t.Setenv.
func TestTracingExportsSpansWhenConfigured(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	collector := &fakeCollector{}
	cs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(cs, collector)
	go func() { _ = cs.Serve(l) }()
	defer cs.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	ts := start(t, serve.Config{Name: "tracedsvc"})
	ctx := testContext(t)
	conn := dial(t, ts.GRPCAddr())

	// A caller's W3C trace context is continued, not replaced.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callCtx := metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(callCtx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := ts.stop(t); err != nil { // flushes the batch
		t.Fatal(err)
	}

	collector.mu.Lock()
	spans := slices.Clone(collector.spans)
	collector.mu.Unlock()
	if want := "grpc.testing.TestService/EmptyCall " + traceID; !slices.Contains(spans, want) {
		t.Errorf("exported spans %q, want %q", spans, want)
	}
	for _, s := range spans {
		if strings.Contains(s, "Health") {
			t.Errorf("health check traced: %q", s)
		}
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `"trace_id":"`+traceID+`"`) {
		t.Errorf("call log lacks the trace ID:\n%s", logs)
	}
}
