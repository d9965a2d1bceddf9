package serve_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/serve"
)

const testServiceName = "grpc.testing.TestService"

func TestPanicBecomesInternal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		call   func(ctx context.Context, c testgrpc.TestServiceClient) error
	}{
		{
			name:   "unary",
			method: "UnaryCall",
			call: func(ctx context.Context, c testgrpc.TestServiceClient) error {
				_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("panic")}})
				return err
			},
		},
		{
			name:   "stream",
			method: "StreamingOutputCall",
			call: func(ctx context.Context, c testgrpc.TestServiceClient) error {
				stream, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte("panic")}})
				if err != nil {
					return err
				}
				return drainStream(stream)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, serve.Config{})
			ctx := testContext(t)
			client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))

			err := tt.call(ctx, client)
			if got := status.Code(err); got != codes.Internal {
				t.Fatalf("panicking call: code %v (%v), want Internal", got, err)
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, "boom") {
				t.Errorf("client saw the panic value: %q", msg)
			}
			if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
				t.Fatalf("call after panic: %v", err)
			}

			// Counted by the metrics interceptor...
			_, body := httpGet(t, ts.AdminAddr(), "/metrics")
			if v, ok := metricValue(body, "grpc_server_handled_total", "grpc_method="+tt.method, "grpc_code=Internal"); !ok || v != 1 {
				t.Errorf("grpc_server_handled_total{grpc_method=%q,grpc_code=Internal} = %v (found %v), want 1", tt.method, v, ok)
			}
			// ...and logged once, with the stack, on the call's line.
			var panicLines []string
			for line := range strings.Lines(ts.logs.String()) {
				if strings.Contains(line, `"panic":`) {
					panicLines = append(panicLines, line)
				}
			}
			if len(panicLines) != 1 {
				t.Fatalf("got %d log lines with a panic, want 1:\n%s", len(panicLines), ts.logs)
			}
			for _, want := range []string{`"level":"ERROR"`, `"grpc.code":"Internal"`, `"stack":`, `"grpc.method":"` + tt.method + `"`} {
				if !strings.Contains(panicLines[0], want) {
					t.Errorf("panic log line lacks %s: %s", want, panicLines[0])
				}
			}
		})
	}
}

// fakeAuth accepts "Bearer good" and puts the user "alice" in the context.
func fakeAuth(ctx context.Context) (context.Context, error) {
	token, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, err
	}
	if token != "good" {
		return nil, status.Error(codes.Unauthenticated, "invalid token")
	}
	return context.WithValue(ctx, userKey{}, "alice"), nil
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ts := start(t, serve.Config{}, serve.WithAuth(fakeAuth, []string{"/grpc.testing.TestService/EmptyCall"}))
	conn := dial(t, ts.GRPCAddr())
	client := testgrpc.NewTestServiceClient(conn)

	unary := func(ctx context.Context) error {
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{FillUsername: true})
		if err == nil && resp.GetUsername() != "alice" {
			return errors.New("handler did not see the authenticated user, got " + resp.GetUsername())
		}
		return err
	}
	stream := func(ctx context.Context) error {
		s, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
			ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}, {Size: 2}},
		})
		if err != nil {
			return err
		}
		return drainStream(s)
	}
	empty := func(ctx context.Context) error {
		_, err := client.EmptyCall(ctx, &testgrpc.Empty{})
		return err
	}
	healthCheck := func(ctx context.Context) error {
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}

	tests := []struct {
		name  string
		token string // authorization header; "" sends none
		call  func(context.Context) error
		want  codes.Code
	}{
		{"unary without token", "", unary, codes.Unauthenticated},
		{"unary with bad token", "Bearer bad", unary, codes.Unauthenticated},
		{"unary with wrong scheme", "Basic good", unary, codes.Unauthenticated},
		{"unary with token", "Bearer good", unary, codes.OK},
		{"stream without token", "", stream, codes.Unauthenticated},
		{"stream with token", "Bearer good", stream, codes.OK},
		{"public method without token", "", empty, codes.OK},
		{"public method with bad token", "Bearer bad", empty, codes.OK},
		{"health without token", "", healthCheck, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			if tt.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.token)
			}
			if got := status.Code(tt.call(ctx)); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
		})
	}

	if got, want := ts.PublicMethods(), []string{"/grpc.testing.TestService/EmptyCall"}; !slices.Equal(got, want) {
		t.Errorf("PublicMethods() = %v, want %v", got, want)
	}
	// Tokens travel in metadata, which must never be logged.
	if logs := ts.logs.String(); strings.Contains(logs, "good") || strings.Contains(logs, "Bearer") {
		t.Errorf("logs contain a token:\n%s", logs)
	}
}

func TestNoAuthMeansEveryMethodIsPublic(t *testing.T) {
	t.Parallel()
	ts := start(t, serve.Config{})
	if got := ts.PublicMethods(); got != nil {
		t.Errorf("PublicMethods() = %v, want nil", got)
	}
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	if _, err := client.UnaryCall(testContext(t), &testgrpc.SimpleRequest{}); err != nil {
		t.Errorf("UnaryCall without auth: %v", err)
	}
}

func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	const inFlight = 3
	// The drain delay only has to outlast the checks made while draining
	// (a new connection and a health check); nothing waits on it.
	ts := start(t, serve.Config{DrainDelay: 2 * time.Second, ShutdownTimeout: time.Minute})
	ctx := testContext(t)
	conn := dial(t, ts.GRPCAddr())
	client := testgrpc.NewTestServiceClient(conn)

	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		resp, err := watch.Recv()
		if err != nil || resp.GetStatus() != want {
			t.Fatalf("health Watch: got %v, %v; want %v", resp.GetStatus(), err, want)
		}
	}
	wantStatus(healthpb.HealthCheckResponse_SERVING)

	results := make(chan error, inFlight)
	for range inFlight {
		go func() {
			_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("block")}})
			results <- err
		}()
		<-ts.svc.entered
	}

	ts.cancel() // what SIGTERM does in a main

	wantStatus(healthpb.HealthCheckResponse_NOT_SERVING)
	// The listener is still open and new connections see NOT_SERVING too.
	fresh := healthpb.NewHealthClient(dial(t, ts.GRPCAddr()))
	for _, svc := range []string{"", testServiceName} {
		resp, err := fresh.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) while draining = %v, %v; want NOT_SERVING", svc, resp.GetStatus(), err)
		}
	}
	if code, body := httpGet(t, ts.AdminAddr(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d %q, want 503", code, body)
	}
	if code, _ := httpGet(t, ts.AdminAddr(), "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200", code)
	}

	// After the drain delay GracefulStop begins, which ends Watch streams
	// (they would otherwise hold it open) but lets unary calls finish.
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Watch after drain delay: %v, want Unavailable", err)
	}
	select {
	case err := <-results:
		t.Fatalf("in-flight call returned before release: %v", err)
	default:
	}
	close(ts.svc.release)
	for range inFlight {
		if err := <-results; err != nil {
			t.Errorf("in-flight call: %v", err)
		}
	}
	if err := ts.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, addr := range []string{ts.GRPCAddr(), ts.AdminAddr()} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run returned", addr)
		}
	}
}

func TestShutdownTimeoutCancelsStuckCalls(t *testing.T) {
	t.Parallel()
	ts := start(t, serve.Config{ShutdownTimeout: 100 * time.Millisecond})
	ctx := testContext(t)
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	result := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("block")}})
		result <- err
	}()
	<-ts.svc.entered
	if err := ts.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-result; status.Code(err) == codes.OK {
		t.Errorf("stuck call succeeded, want it cancelled")
	}
}

func TestMaxRecvMsgSize(t *testing.T) {
	t.Parallel()
	ts := start(t, serve.Config{MaxRecvMsgSize: 1024})
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	tests := []struct {
		size int
		want codes.Code
	}{
		{512, codes.OK},
		{2048, codes.ResourceExhausted},
	}
	for _, tt := range tests {
		_, err := client.UnaryCall(testContext(t), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: make([]byte, tt.size)}})
		if got := status.Code(err); got != tt.want {
			t.Errorf("%d-byte request: code %v (%v), want %v", tt.size, got, err, tt.want)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	jwks := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) })
	tests := []struct {
		name  string
		pprof bool
	}{
		{"pprof off", false},
		{"pprof on", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, serve.Config{EnablePprof: tt.pprof}, serve.WithHTTPHandler("GET /.well-known/jwks.json", jwks))
			if _, err := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr())).EmptyCall(testContext(t), &testgrpc.Empty{}); err != nil {
				t.Fatal(err)
			}

			code, body := httpGet(t, ts.AdminAddr(), "/metrics")
			if code != http.StatusOK {
				t.Fatalf("/metrics = %d", code)
			}
			if v, ok := metricValue(body, "grpc_server_handled_total", "grpc_service="+testServiceName, "grpc_method=EmptyCall", "grpc_code=OK"); !ok || v != 1 {
				t.Errorf("grpc_server_handled_total for EmptyCall OK = %v (found %v), want 1", v, ok)
			}
			if v, ok := metricValue(body, "grpc_server_handling_seconds_count", "grpc_method=EmptyCall"); !ok || v != 1 {
				t.Errorf("grpc_server_handling_seconds_count for EmptyCall = %v (found %v), want 1", v, ok)
			}
			// Every method is pre-registered at zero.
			if _, ok := metricValue(body, "grpc_server_handled_total", "grpc_method=FullDuplexCall", "grpc_code=OK"); !ok {
				t.Error("grpc_server_handled_total not initialised for FullDuplexCall")
			}
			for _, want := range []string{"go_goroutines ", "process_cpu_seconds_total "} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}

			pprofCode := http.StatusNotFound
			if tt.pprof {
				pprofCode = http.StatusOK
			}
			for _, c := range []struct {
				path     string
				wantCode int
				wantBody string
			}{
				{"/healthz", http.StatusOK, "ok"},
				{"/readyz", http.StatusOK, "ok"},
				{"/.well-known/jwks.json", http.StatusOK, `{"keys":[]}`},
				{"/debug/pprof/", pprofCode, ""},
				{"/nope", http.StatusNotFound, ""},
			} {
				code, body := httpGet(t, ts.AdminAddr(), c.path)
				if code != c.wantCode || !strings.Contains(body, c.wantBody) {
					t.Errorf("GET %s = %d %q, want %d containing %q", c.path, code, body, c.wantCode, c.wantBody)
				}
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	var dbUp atomic.Bool
	ts := start(t, serve.Config{},
		serve.WithReadiness("cache", func(context.Context) error { return nil }),
		serve.WithReadiness("database", func(ctx context.Context) error {
			if !dbUp.Load() {
				return errors.New("connection refused")
			}
			return ctx.Err()
		}),
		serve.WithReadinessPollInterval(10*time.Millisecond),
	)
	ctx := testContext(t)
	health := healthpb.NewHealthClient(dial(t, ts.GRPCAddr()))

	check := func(want healthpb.HealthCheckResponse_ServingStatus, wantCode int, wantBody string) {
		t.Helper()
		for _, svc := range []string{"", testServiceName} {
			resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != want {
				t.Errorf("Check(%q) = %v, %v; want %v", svc, resp.GetStatus(), err, want)
			}
		}
		if code, body := httpGet(t, ts.AdminAddr(), "/readyz"); code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("/readyz = %d %q, want %d containing %q", code, body, wantCode, wantBody)
		}
		if code, _ := httpGet(t, ts.AdminAddr(), "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz = %d, want 200 whatever the readiness", code)
		}
	}
	// Status is set from the checks before Ready() is closed.
	check(healthpb.HealthCheckResponse_NOT_SERVING, http.StatusServiceUnavailable, "database")

	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: testServiceName})
	if err != nil {
		t.Fatal(err)
	}
	next := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		if resp, err := watch.Recv(); err != nil || resp.GetStatus() != want {
			t.Fatalf("Watch = %v, %v; want %v", resp.GetStatus(), err, want)
		}
	}
	next(healthpb.HealthCheckResponse_NOT_SERVING)

	dbUp.Store(true)
	next(healthpb.HealthCheckResponse_SERVING)
	check(healthpb.HealthCheckResponse_SERVING, http.StatusOK, "ok")

	dbUp.Store(false)
	next(healthpb.HealthCheckResponse_NOT_SERVING)
	check(healthpb.HealthCheckResponse_NOT_SERVING, http.StatusServiceUnavailable, "database")
}

func TestReflection(t *testing.T) {
	t.Parallel()
	// With auth on, to show reflection needs no token.
	ts := start(t, serve.Config{}, serve.WithAuth(fakeAuth, nil))
	stream, err := reflectionpb.NewServerReflectionClient(dial(t, ts.GRPCAddr())).ServerReflectionInfo(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.GetName())
	}
	for _, want := range []string{testServiceName, "grpc.health.v1.Health"} {
		if !slices.Contains(got, want) {
			t.Errorf("reflection lists %v, want %s among them", got, want)
		}
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	ts := start(t, serve.Config{})
	ctx := testContext(t)
	conn := dial(t, ts.GRPCAddr())
	if _, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{
		Payload: &testgrpc.Payload{Body: []byte("secret-payload")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	logs := ts.logs.String()
	// Successful calls are at debug (the test server's logger writes them).
	want := map[string]string{"UnaryCall": `"level":"DEBUG"`, "Check": `"level":"DEBUG"`}
	for line := range strings.Lines(logs) {
		for method, level := range want {
			if strings.Contains(line, `"grpc.method":"`+method+`"`) {
				if !strings.Contains(line, level) {
					t.Errorf("%s logged with the wrong level, want %s: %s", method, level, line)
				}
				delete(want, method)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("no log line for %v:\n%s", want, logs)
	}
	if strings.Contains(logs, "secret-payload") || strings.Contains(logs, "c2VjcmV0") {
		t.Errorf("logs contain a request payload:\n%s", logs)
	}
}

func TestExtraInterceptorsRunAfterAuth(t *testing.T) {
	t.Parallel()
	var sawUser atomic.Value
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if u, ok := ctx.Value(userKey{}).(string); ok {
			sawUser.Store(u)
		}
		return handler(ctx, req)
	}
	ts := start(t, serve.Config{}, serve.WithAuth(fakeAuth, nil), serve.WithUnaryInterceptors(record))
	ctx := metadata.AppendToOutgoingContext(testContext(t), "authorization", "Bearer good")
	if _, err := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr())).UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := sawUser.Load(); got != "alice" {
		t.Errorf("extra interceptor saw user %v, want alice", got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	valid := serve.Config{Name: "x", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}
	h := http.NotFoundHandler()
	tests := []struct {
		name string
		cfg  serve.Config
		opts []serve.Option
	}{
		{"invalid config", serve.Config{}, nil},
		{"nil auth func", valid, []serve.Option{serve.WithAuth(nil, nil)}},
		{"malformed public method", valid, []serve.Option{serve.WithAuth(fakeAuth, []string{"grpc.testing.TestService/EmptyCall"})}},
		{"public method without method", valid, []serve.Option{serve.WithAuth(fakeAuth, []string{"/grpc.testing.TestService/"})}},
		{"nameless readiness check", valid, []serve.Option{serve.WithReadiness("", func(context.Context) error { return nil })}},
		{"nil readiness check", valid, []serve.Option{serve.WithReadiness("db", nil)}},
		{"route clashing with /metrics", valid, []serve.Option{serve.WithHTTPHandler("GET /metrics", h)}},
		{"invalid route pattern", valid, []serve.Option{serve.WithHTTPHandler("BAD PATTERN HERE", h)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := serve.New(tt.cfg, tt.opts...); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestRunRejectsUnregisteredPublicMethod(t *testing.T) {
	t.Parallel()
	srv, err := serve.New(serve.Config{Name: "x", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"},
		serve.WithAuth(fakeAuth, []string{"/grpc.testing.TestService/EmptyCal"}))
	if err != nil {
		t.Fatal(err)
	}
	testgrpc.RegisterTestServiceServer(srv.GRPC(), &testService{})
	err = srv.Run(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "EmptyCal") {
		t.Errorf("Run = %v, want an error naming the unregistered public method", err)
	}
	if err := srv.Run(testContext(t)); err == nil {
		t.Error("second Run succeeded, want an error")
	}
}

func TestRunFailsWhenAddressTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, cfg := range []serve.Config{
		{Name: "x", GRPCAddr: l.Addr().String(), AdminAddr: "127.0.0.1:0"},
		{Name: "x", GRPCAddr: "127.0.0.1:0", AdminAddr: l.Addr().String()},
	} {
		srv, err := serve.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Run(testContext(t)); err == nil {
			t.Errorf("Run on a taken address (%+v) succeeded", cfg)
		}
	}
}
