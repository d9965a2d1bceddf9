package serve_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/serve"
)

// testTimeout bounds every test's RPCs and waits.
const testTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// userKey is where the fake auth func puts the caller's name.
type userKey struct{}

// testService implements grpc.testing.TestService. A request payload body of
// "panic" panics; "block" signals entered and waits for release.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	entered chan struct{}
	release chan struct{}
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	switch string(req.GetPayload().GetBody()) {
	case "panic":
		panic("boom")
	case "block":
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	resp := &testgrpc.SimpleResponse{}
	if req.GetFillUsername() {
		resp.Username, _ = ctx.Value(userKey{}).(string)
	}
	return resp, nil
}

// StreamingInputCall sums the sizes of the payloads it receives.
func (s *testService) StreamingInputCall(stream testgrpc.TestService_StreamingInputCallServer) error {
	var size int32
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: size})
		}
		if err != nil {
			return err
		}
		size += int32(len(req.GetPayload().GetBody()))
	}
}

func (s *testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	if string(req.GetPayload().GetBody()) == "panic" {
		panic("stream boom")
	}
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{
			Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())},
		}); err != nil {
			return err
		}
	}
	return nil
}

// testServer is a running serve.Server with the test service registered.
type testServer struct {
	*serve.Server
	svc  *testService
	logs *expect.LogBuffer

	cancel   context.CancelFunc
	done     chan struct{}
	runErr   error // set before done is closed
	stopOnce sync.Once
}

// start runs a server on 127.0.0.1:0 and stops it when the test ends,
// failing the test if Run returns an error. Unless cfg.Logger is set, the
// server logs JSON at debug level to the testServer's logs.
func start(t testing.TB, cfg serve.Config, opts ...serve.Option) *testServer {
	t.Helper()
	return startWith(t, cfg, nil, opts...)
}

// startWith is start, with register, if not nil, adding services of the
// test's own beside the test service.
func startWith(t testing.TB, cfg serve.Config, register func(grpc.ServiceRegistrar), opts ...serve.Option) *testServer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "testsvc"
	}
	cfg.GRPCAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	logs := &expect.LogBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := serve.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	svc := &testService{entered: make(chan struct{}), release: make(chan struct{})}
	testgrpc.RegisterTestServiceServer(srv.GRPC(), svc)
	if register != nil {
		register(srv.GRPC())
	}

	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, svc: svc, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		ts.runErr = srv.Run(ctx)
		close(ts.done)
	}()
	select {
	case <-srv.Ready():
	case <-ts.done:
		t.Fatalf("Run: %v", ts.runErr)
	case <-time.After(testTimeout):
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		if err := ts.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	return ts
}

// stop cancels Run's context and returns Run's result.
func (ts *testServer) stop(t testing.TB) error {
	t.Helper()
	ts.stopOnce.Do(ts.cancel)
	select {
	case <-ts.done:
		return ts.runErr
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// dial returns a client connection to addr, closed when the test ends.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testContext returns a context bounded by testTimeout.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// httpGet fetches http://addr+path and returns the status code and body.
func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// metricValue returns the value of the first sample of the named metric whose
// labels include every name="value" pair in labels.
func metricValue(body, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(line, k+`="`+v+`"`) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		return f, err == nil
	}
	return 0, false
}

// drainStream receives from a server stream until it ends and returns the
// first error other than io.EOF.
func drainStream[T any](stream interface{ Recv() (T, error) }) error {
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
