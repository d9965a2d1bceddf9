package serve_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/serve"
)

// waitingService serves EmptyCall, and a StreamingOutputCall that sends
// one message and then waits for its context, as a feed does.
type waitingService struct {
	testgrpc.UnimplementedTestServiceServer
	ended chan time.Time
}

func (waitingService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (w waitingService) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	defer func() { w.ended <- time.Now() }()
	if err := stream.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// TestServiceAndBackground: a service given with WithService is served;
// WithBackground work runs from Run's start until the gRPC server has
// stopped, after the drain; a stream still open at the stop, whose handler
// waits on its context, ends with Unavailable instead of holding the stop
// up to ShutdownTimeout.
func TestServiceAndBackground(t *testing.T) {
	t.Parallel()
	var (
		bgStarted = make(chan struct{})
		bgStopped = make(chan time.Time, 1)
		svc       = waitingService{ended: make(chan time.Time, 1)}
	)
	background := func(ctx context.Context) error {
		close(bgStarted)
		<-ctx.Done()
		bgStopped <- time.Now()
		return nil
	}
	cfg := serve.Config{
		Name: "testsvc", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		DrainDelay: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
	srv, err := serve.New(cfg,
		serve.WithService(&testgrpc.TestService_ServiceDesc, svc),
		serve.WithBackground(background))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	select {
	case <-bgStarted:
	case <-time.After(testTimeout):
		t.Fatal("background work not started")
	}

	client := testgrpc.NewTestServiceClient(dial(t, srv.GRPCAddr()))
	if _, err := client.EmptyCall(testContext(t), &testgrpc.Empty{}); err != nil {
		t.Fatalf("EmptyCall on the service given with WithService: %v", err)
	}
	stream, err := client.StreamingOutputCall(testContext(t), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the handler is running
		t.Fatal(err)
	}

	stopAt := time.Now()
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("stream open at the stop ended with %v, want Unavailable", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return")
	}
	took := time.Since(stopAt)
	ended, stopped := <-svc.ended, <-bgStopped
	if ended.Sub(stopAt) < cfg.DrainDelay {
		t.Errorf("stream ended %v after the signal, before the drain delay %v", ended.Sub(stopAt), cfg.DrainDelay)
	}
	if stopped.Before(ended) {
		t.Errorf("background work stopped %v before the stream's handler returned: it must outlive the drain", ended.Sub(stopped))
	}
	if took > cfg.ShutdownTimeout/2 {
		t.Errorf("stop took %v: the stream held it", took)
	}
}

// TestBackgroundFailureStopsServer: background work that fails stops the
// server, and Run reports why.
func TestBackgroundFailureStopsServer(t *testing.T) {
	t.Parallel()
	cfg := serve.Config{Name: "testsvc", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	srv, err := serve.New(cfg, serve.WithBackground(func(context.Context) error { return errors.New("lost the feed for good") }))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-func() chan error {
		done := make(chan error, 1)
		go func() { done <- srv.Run(t.Context()) }()
		return done
	}():
		if err == nil || !strings.Contains(err.Error(), "lost the feed for good") {
			t.Errorf("Run = %v, want the background work's error", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after its background work failed")
	}
}

// TestReadinessLogLevels: a server that is not ready at its start (loading
// what it needs) says so at INFO; losing readiness later is a WARN.
func TestReadinessLogLevels(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	check := func(context.Context) error {
		if !ready.Load() {
			return errors.New("key set not loaded")
		}
		return nil
	}
	ts := start(t, serve.Config{}, serve.WithReadiness("keys", check), serve.WithReadinessPollInterval(10*time.Millisecond))
	lines := func(msg string) []string {
		var out []string
		for _, l := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(l, `"msg":"`+msg+`"`) {
				out = append(out, l)
			}
		}
		return out
	}
	waitLog := func(msg string) string {
		t.Helper()
		expect.Eventually(t, testTimeout, "log line "+msg, func() bool { return len(lines(msg)) > 0 })
		return lines(msg)[0]
	}
	if l := waitLog("not ready yet"); !strings.Contains(l, `"level":"INFO"`) {
		t.Errorf("not ready at start logged as %s, want INFO", l)
	}
	ready.Store(true)
	waitLog("ready")
	ready.Store(false)
	if l := waitLog("not ready"); !strings.Contains(l, `"level":"WARN"`) {
		t.Errorf("readiness lost logged as %s, want WARN", l)
	}
	if n := len(lines("not ready yet")); n != 1 {
		t.Errorf("%d \"not ready yet\" lines, want 1", n)
	}
}
