package serve_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/serve"
)

// finishedCalls returns the "finished call" lines of logs, decoded, by
// method.
func finishedCalls(t *testing.T, logs string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == "finished call" {
			out[rec["grpc.method"].(string)] = rec
		}
	}
	return out
}

// TestFinishedCallFields checks the fields of the line each call gets: the
// names go-grpc-middleware's logging interceptor used (dashboards and
// queries depend on them), fields added with logging.AddFields inside the
// call, and the trace ID of a caller's sampled W3C trace context even
// though no exporter is configured.
func TestFinishedCallFields(t *testing.T) {
	t.Parallel()
	addDetail := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		logging.AddFields(ctx, logging.Fields{"error.detail", "added by the handler"})
		return handler(ctx, req)
	}
	ts := start(t, serve.Config{},
		serve.WithAuth(fakeAuth, []string{"/grpc.testing.TestService/EmptyCall", "/grpc.testing.TestService/StreamingOutputCall"}),
		serve.WithUnaryInterceptors(addDetail))
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	ctx := testContext(t)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	traced := metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if _, err := client.EmptyCall(traced, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("UnaryCall without a token: %v, want Unauthenticated", err)
	}
	stream, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := drainStream(stream); err != nil {
		t.Fatal(err)
	}
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}

	calls := finishedCalls(t, ts.logs.String())
	tests := []struct {
		method string
		want   map[string]any
		absent []string
	}{
		{"EmptyCall", map[string]any{
			"level": "INFO", "protocol": "grpc", "grpc.component": "server", "grpc.service": "grpc.testing.TestService",
			"grpc.method_type": "unary", "grpc.code": "OK", "error.detail": "added by the handler", "trace_id": traceID,
		}, []string{"grpc.error"}},
		{"UnaryCall", map[string]any{
			"level": "INFO", "grpc.code": "Unauthenticated",
		}, []string{"trace_id", "error.detail"}},
		{"StreamingOutputCall", map[string]any{
			"level": "INFO", "grpc.method_type": "server_stream", "grpc.code": "OK",
		}, []string{"grpc.error"}},
	}
	for _, tt := range tests {
		rec, ok := calls[tt.method]
		if !ok {
			t.Errorf("no finished call line for %s:\n%s", tt.method, ts.logs)
			continue
		}
		for k, want := range tt.want {
			if got := rec[k]; got != want {
				t.Errorf("%s: %s = %v, want %v", tt.method, k, got, want)
			}
		}
		for _, k := range []string{"peer.address", "grpc.start_time", "grpc.request.deadline", "grpc.time_ms"} {
			if _, ok := rec[k].(string); !ok {
				t.Errorf("%s: %s missing or not a string: %v", tt.method, k, rec)
			}
		}
		if e, _ := rec["grpc.error"].(string); rec["grpc.code"] != "OK" && !strings.HasPrefix(e, "rpc error: code = "+rec["grpc.code"].(string)) {
			t.Errorf("%s: grpc.error = %q, want the status error", tt.method, e)
		}
		for _, k := range tt.absent {
			if v, ok := rec[k]; ok {
				t.Errorf("%s: unexpected %s = %v", tt.method, k, v)
			}
		}
	}
}
