package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/expect"
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

// TestFinishedCallFields checks the fields of the line each call gets with
// the access log on: the
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
	ts := start(t, serve.Config{AccessLog: true},
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

// TestRefusalLogLimited: a flood of calls refused at authentication is
// counted in full by the metrics but logged at most ten lines a second, the
// next line saying how many were left out; other failures are all logged.
func TestRefusalLogLimited(t *testing.T) {
	t.Parallel()
	refuse := func(context.Context) (context.Context, error) {
		return nil, status.Error(codes.Unauthenticated, "no")
	}
	ts := start(t, serve.Config{}, serve.WithAuth(refuse, nil))
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	ctx := testContext(t)
	const flood = 300
	began := time.Now()
	for range flood {
		if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("EmptyCall: %v, want Unauthenticated", err)
		}
	}
	took := time.Since(began)
	time.Sleep(serve.RefusalLogInterval) // past the interval: the next refusal is logged
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("EmptyCall: %v", err)
	}
	_, body := httpGet(t, ts.AdminAddr(), "/metrics")
	if v, _ := metricValue(body, "grpc_server_handled_total", "grpc_method=EmptyCall", "grpc_code=Unauthenticated"); v != flood+1 {
		t.Errorf("grpc_server_handled_total{Unauthenticated} = %v, want %d", v, flood+1)
	}
	logged, notLogged := 0, 0
	for line := range strings.Lines(ts.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] != "finished call" {
			continue
		}
		logged++
		if n, ok := rec["refusals_not_logged"].(float64); ok {
			notLogged += int(n)
		}
	}
	most := 2 + int(took/serve.RefusalLogInterval)
	if logged < 2 || logged > most {
		t.Errorf("%d refused calls in %v logged %d lines, want 2 to %d", flood+1, took, logged, most)
	}
	if logged+notLogged != flood+1 {
		t.Errorf("%d lines logged and %d said to be left out, want %d in all", logged, notLogged, flood+1)
	}
}

// TestLogAllRefusals: with LogAllRefusals every refused call has its line.
func TestLogAllRefusals(t *testing.T) {
	t.Parallel()
	refuse := func(context.Context) (context.Context, error) {
		return nil, status.Error(codes.PermissionDenied, "no")
	}
	ts := start(t, serve.Config{LogAllRefusals: true}, serve.WithAuth(refuse, nil))
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	for range 50 {
		if _, err := client.EmptyCall(testContext(t), &testgrpc.Empty{}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("EmptyCall: %v", err)
		}
	}
	if got := strings.Count(ts.logs.String(), `"msg":"finished call"`); got != 50 {
		t.Errorf("%d lines for 50 refused calls, want 50", got)
	}
}

// TestCancelledCallLoggedAtDebug: a call its client cancels is the caller's
// choice, not a failure, so its line is at debug level (a service's error
// mapping turns the handler's context error into Canceled, as here).
func TestCancelledCallLoggedAtDebug(t *testing.T) {
	t.Parallel()
	toStatus := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if errors.Is(err, context.Canceled) {
			err = status.FromContextError(err).Err()
		}
		return resp, err
	}
	ts := start(t, serve.Config{}, serve.WithUnaryInterceptors(toStatus))
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	ctx, cancel := context.WithCancel(testContext(t))
	called := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("block")}})
		called <- err
	}()
	<-ts.svc.entered
	cancel()
	if err := <-called; status.Code(err) != codes.Canceled {
		t.Fatalf("UnaryCall cancelled by its client: %v, want Canceled", err)
	}
	if err := ts.stop(t); err != nil { // every call's line is written
		t.Fatal(err)
	}

	rec, ok := finishedCalls(t, ts.logs.String())["UnaryCall"]
	if !ok {
		t.Fatalf("no finished call line for UnaryCall:\n%s", ts.logs)
	}
	for k, want := range map[string]any{"level": "DEBUG", "grpc.code": "Canceled"} {
		if got := rec[k]; got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
}

// TestLogPolicy: through a real server logging at info, a call that
// succeeds has no line by default and one with the access log; a failed
// call and a slow one have a line either way.
func TestLogPolicy(t *testing.T) {
	t.Parallel()
	const slow = 100 * time.Millisecond
	// The test's caller picks each call's outcome with x-outcome.
	outcome := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		switch strings.Join(md.Get("x-outcome"), "") {
		case "fail":
			return nil, status.Error(codes.NotFound, "no such thing")
		case "slow":
			time.Sleep(2 * slow)
		}
		return handler(ctx, req)
	}
	for _, tt := range []struct {
		name      string
		accessLog bool
		want      map[string]string // outcome: the level of its line, "" for none
	}{
		{"default", false, map[string]string{"ok": "", "fail": "INFO", "slow": "WARN"}},
		{"access log", true, map[string]string{"ok": "INFO", "fail": "INFO", "slow": "WARN"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &expect.LogBuffer{}
			ts := start(t, serve.Config{
				AccessLog:    tt.accessLog,
				LogSlowCalls: slow,
				Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
			}, serve.WithUnaryInterceptors(outcome))
			client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
			for _, o := range []string{"ok", "fail", "slow"} {
				ctx := metadata.AppendToOutgoingContext(testContext(t), "x-outcome", o)
				_, err := client.EmptyCall(ctx, &testgrpc.Empty{})
				if wantErr := o == "fail"; (err != nil) != wantErr {
					t.Fatalf("EmptyCall %s: %v", o, err)
				}
			}
			if err := ts.stop(t); err != nil { // every call's line is written
				t.Fatal(err)
			}
			lines := map[string][]string{}
			for line := range strings.Lines(logs.String()) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line is not JSON: %v: %s", err, line)
				}
				if rec["msg"] != "finished call" {
					continue
				}
				o := "ok"
				switch {
				case rec["grpc.code"] != "OK":
					o = "fail"
				case rec["grpc.slow"] == true:
					o = "slow"
				}
				lines[o] = append(lines[o], rec["level"].(string))
			}
			for o, want := range tt.want {
				got := lines[o]
				switch {
				case want == "" && len(got) != 0:
					t.Errorf("%s call: lines at %v, want none:\n%s", o, got, logs)
				case want != "" && (len(got) != 1 || got[0] != want):
					t.Errorf("%s call: lines at %v, want one at %s:\n%s", o, got, want, logs)
				}
			}
		})
	}
}
