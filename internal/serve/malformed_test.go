package serve_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/serve"
)

// malformedMetric is the counter of requests gRPC could not decode.
const malformedMetric = "tokencart_grpc_malformed_requests_total"

// unmarshalFailure starts the status message gRPC-Go gives a request it
// cannot decode; the server recognises the failure by it.
const unmarshalFailure = "grpc: failed to unmarshal the received message"

// malformedPayload is not valid protobuf (its first tag has wire type 7),
// and carries a marker that must never reach the log.
var malformedPayload = append([]byte{0xff, 0xff, 0xff}, "payload-marker-5f3a"...)

// rawCodec sends a []byte request as it is. Its name is "proto", so the
// server decodes the bytes as protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// sendRaw calls method with payload as the request message, in a unary
// call or, with clientStream, as the only message of a client stream, and
// returns the call's error. The call carries an authorization header.
func sendRaw(ctx context.Context, conn *grpc.ClientConn, method string, clientStream bool, payload []byte) error {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer header-marker-9c1e")
	var reply []byte
	if !clientStream {
		return conn.Invoke(ctx, method, payload, &reply, grpc.ForceCodecV2(rawCodec{}))
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	// io.EOF means the server already ended the call: RecvMsg has its status.
	if err := stream.SendMsg(payload); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(&reply)
}

// endNotifier is a stats handler that reports the end of each call. gRPC
// writes a decode failure's status before the handler returns, and so
// before the server has counted and logged it; the call's End comes after.
type endNotifier struct {
	ends chan struct{}
}

func newEndNotifier() endNotifier { return endNotifier{ends: make(chan struct{}, 512)} }

func (n endNotifier) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (n endNotifier) HandleRPC(_ context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.End); ok {
		n.ends <- struct{}{}
	}
}

func (n endNotifier) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (n endNotifier) HandleConn(context.Context, stats.ConnStats) {}

// wait returns once count more calls have ended.
func (n endNotifier) wait(t *testing.T, count int) {
	t.Helper()
	timeout := time.After(testTimeout)
	for range count {
		select {
		case <-n.ends:
		case <-timeout:
			t.Fatalf("calls did not end within %v", testTimeout)
		}
	}
}

// checkedLogs returns the server's log records, failing t if one carries
// the request's payload or metadata.
func checkedLogs(t *testing.T, ts *testServer) []map[string]any {
	t.Helper()
	secrets := expect.Secrets{}
	secrets.AddBytes("payload marker", malformedPayload[3:])
	secrets.Add("authorization header", "header-marker-9c1e")
	return expect.NoSecrets(t, ts.logs.String(), secrets)
}

// logRecords returns the records with message msg and, if method is not
// empty, that grpc.method.
func logRecords(records []map[string]any, msg, method string) []map[string]any {
	var out []map[string]any
	for _, r := range records {
		if r["msg"] == msg && (method == "" || r["grpc.method"] == method) {
			out = append(out, r)
		}
	}
	return out
}

// TestMalformedRequest checks what each layer sees of a request gRPC
// cannot decode: the client gets Internal, the malformed-request counter
// counts registered methods (and only those, by name), and the call is
// logged once: by the server's handler wrapper for a unary call, which no
// interceptor sees, and by the logging interceptor for a stream.
func TestMalformedRequest(t *testing.T) {
	t.Parallel()
	recvOne := func(_ any, stream grpc.ServerStream) error { return stream.RecvMsg(&testgrpc.Empty{}) }
	tests := []struct {
		name         string
		opts         []serve.Option
		service      string
		method       string
		clientStream bool
		wantCode     codes.Code
		wantCounted  []string // label pairs of the counter that reads 1, or nil
		wantWarns    int      // "malformed request" lines
		wantFinished int      // "finished call" lines from the logging interceptor
	}{
		{
			name:        "unary",
			service:     testServiceName,
			method:      "UnaryCall",
			wantCode:    codes.Internal,
			wantCounted: []string{"grpc_service=" + testServiceName, "grpc_method=UnaryCall", "reason=wire_format"},
			wantWarns:   1,
		},
		{
			name:         "client stream",
			service:      testServiceName,
			method:       "StreamingInputCall",
			clientStream: true,
			wantCode:     codes.Internal,
			wantCounted:  []string{"grpc_service=" + testServiceName, "grpc_method=StreamingInputCall", "reason=wire_format"},
			wantFinished: 1,
		},
		{
			name:     "unknown method",
			service:  testServiceName,
			method:   "NoSuchCall",
			wantCode: codes.Unimplemented,
		},
		{
			name:         "unknown service handler",
			opts:         []serve.Option{serve.WithServerOptions(grpc.UnknownServiceHandler(recvOne))},
			service:      "no.such.Service",
			method:       "Call",
			clientStream: true,
			wantCode:     codes.Internal,
			wantFinished: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ended := newEndNotifier()
			ts := start(t, serve.Config{}, append(tt.opts, serve.WithServerOptions(grpc.StatsHandler(ended)))...)
			conn := dial(t, ts.GRPCAddr())
			ctx := testContext(t)

			err := sendRaw(ctx, conn, "/"+tt.service+"/"+tt.method, tt.clientStream, malformedPayload)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("malformed request: code %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.wantCode == codes.Internal {
				// The handler recognises the failure by this text.
				if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, unmarshalFailure) {
					t.Errorf("malformed request: message %q, want the prefix %q", msg, unmarshalFailure)
				}
				ended.wait(t, 1)
			}

			_, body := httpGet(t, ts.AdminAddr(), "/metrics")
			if tt.wantCounted != nil {
				if v, ok := metricValue(body, malformedMetric, tt.wantCounted...); !ok || v != 1 {
					t.Errorf("%s%v = %v (found %v), want 1", malformedMetric, tt.wantCounted, v, ok)
				}
			}
			if v, ok := metricValue(body, malformedMetric, "grpc_method="+tt.method); ok && tt.wantCounted == nil {
				t.Errorf("%s has a series for %s (= %v), want none", malformedMetric, tt.method, v)
			}
			if tt.service == testServiceName {
				v, _ := metricValue(body, "grpc_server_handled_total", "grpc_method="+tt.method, "grpc_code=Internal")
				if want := float64(tt.wantFinished); v != want {
					t.Errorf("grpc_server_handled_total{grpc_method=%q,grpc_code=Internal} = %v, want %v", tt.method, v, want)
				}
			}

			records := checkedLogs(t, ts)
			warns := logRecords(records, "malformed request", "")
			finished := logRecords(records, "finished call", tt.method)
			if got := len(warns); got != tt.wantWarns {
				t.Errorf("got %d malformed request lines, want %d:\n%s", got, tt.wantWarns, ts.logs)
			}
			if got := len(finished); got != tt.wantFinished {
				t.Errorf("got %d finished call lines for %s, want %d:\n%s", got, tt.method, tt.wantFinished, ts.logs)
			}
			for _, r := range warns {
				for _, check := range []struct {
					field string
					ok    bool
				}{
					{"level", r["level"] == "WARN"},
					{"grpc.service", r["grpc.service"] == tt.service},
					{"grpc.method", r["grpc.method"] == tt.method},
					{"grpc.code", r["grpc.code"] == "Internal"},
					{"peer.address", strings.HasPrefix(r["peer.address"].(string), "127.0.0.1:")},
					{"grpc.error", strings.HasPrefix(r["grpc.error"].(string), unmarshalFailure+": proto:")},
					{"suppressed", r["suppressed"] == 0.0},
				} {
					if !check.ok {
						t.Errorf("malformed request line: unexpected %s: %v", check.field, r)
					}
				}
			}
		})
	}
}

// TestMalformedRequestFlood checks that a flood of malformed requests is
// counted in full but logged at a bounded rate, and that valid calls are
// not counted.
func TestMalformedRequestFlood(t *testing.T) {
	t.Parallel()
	const method = "/" + testServiceName + "/UnaryCall"
	ended := newEndNotifier()
	ts := start(t, serve.Config{}, serve.WithServerOptions(grpc.StatsHandler(ended)))
	conn := dial(t, ts.GRPCAddr())
	ctx := testContext(t)
	counted := func() float64 {
		t.Helper()
		_, body := httpGet(t, ts.AdminAddr(), "/metrics")
		v, _ := metricValue(body, malformedMetric, "grpc_method=UnaryCall", "reason=wire_format")
		return v
	}

	if err := sendRaw(ctx, conn, method, false, malformedPayload); status.Code(err) != codes.Internal {
		t.Fatalf("malformed request: %v, want Internal", err)
	}
	ended.wait(t, 1)
	if got := counted(); got != 1 {
		t.Errorf("after one malformed request, %s = %v, want 1", malformedMetric, got)
	}
	if got := len(logRecords(checkedLogs(t, ts), "malformed request", "")); got != 1 {
		t.Errorf("after one malformed request, %d log lines, want 1", got)
	}

	const flood = 200
	results := make(chan codes.Code, flood)
	var wg sync.WaitGroup
	for range flood {
		wg.Go(func() { results <- status.Code(sendRaw(ctx, conn, method, false, malformedPayload)) })
	}
	wg.Wait()
	close(results)
	for c := range results {
		if c != codes.Internal {
			t.Fatalf("malformed request in the flood: %v, want Internal", c)
		}
	}
	ended.wait(t, flood)
	if got := counted(); got != 1+flood {
		t.Errorf("after the flood, %s = %v, want %d", malformedMetric, got, 1+flood)
	}
	// One line a second: the flood takes well under a second, but a slow
	// machine may cross a second or two.
	if got := len(logRecords(checkedLogs(t, ts), "malformed request", "")); got < 1 || got > 3 {
		t.Errorf("after the flood, %d malformed request lines, want 1 to 3:\n%s", got, ts.logs)
	}

	client := testgrpc.NewTestServiceClient(conn)
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("valid UnaryCall: %v", err)
	}
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("valid EmptyCall: %v", err)
	}
	ended.wait(t, 2)
	if got := counted(); got != 1+flood {
		t.Errorf("after valid calls, %s{UnaryCall} = %v, want %d", malformedMetric, got, 1+flood)
	}
	_, body := httpGet(t, ts.AdminAddr(), "/metrics")
	if v, ok := metricValue(body, malformedMetric, "grpc_method=EmptyCall"); !ok || v != 0 {
		t.Errorf("%s{EmptyCall} = %v (found %v), want 0", malformedMetric, v, ok)
	}
}
