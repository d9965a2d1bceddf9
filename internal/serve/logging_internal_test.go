package serve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCallLoggerPolicy: by default a call that succeeds has no line, a
// failed one has a line at the level of its code's class (the client's
// errors below the server's), a slow unary call has one at warn, and with
// the access log every call has one; a line below the logger's level is not
// written.
func TestCallLoggerPolicy(t *testing.T) {
	t.Parallel()
	const slow = 50 * time.Millisecond
	tests := []struct {
		name     string
		method   string
		policy   logPolicy
		err      error
		took     time.Duration // how long the handler takes
		minLevel slog.Level
		want     string // the line's level, "" for no line
		gone     bool   // the call's context is done when it ends
	}{
		{"ok, default", "/pkg.Svc/Get", logPolicy{slow: slow}, nil, 0, slog.LevelInfo, "", false},
		{"ok at debug", "/pkg.Svc/Get", logPolicy{slow: slow}, nil, 0, slog.LevelDebug, "DEBUG", false},
		{"ok, access log", "/pkg.Svc/Get", logPolicy{accessLog: true, slow: slow}, nil, 0, slog.LevelInfo, "INFO", false},
		{"ok, access log, warn logger", "/pkg.Svc/Get", logPolicy{accessLog: true}, nil, 0, slog.LevelWarn, "", false},
		{"health ok, access log", "/grpc.health.v1.Health/Check", logPolicy{accessLog: true}, nil, 0, slog.LevelInfo, "INFO", false},
		{"health ok, default", "/grpc.health.v1.Health/Check", logPolicy{}, nil, 0, slog.LevelInfo, "", false},
		{"cancelled, default", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Canceled, "x"), 0, slog.LevelInfo, "", false},
		{"client error", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.InvalidArgument, "x"), 0, slog.LevelInfo, "INFO", false},
		{"conflict", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Aborted, "x"), 0, slog.LevelInfo, "INFO", false},
		{"client error, warn logger", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.NotFound, "x"), 0, slog.LevelWarn, "", false},
		{"unavailable", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Unavailable, "x"), 0, slog.LevelWarn, "WARN", false},
		{"unavailable, connection gone", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Unavailable, "transport is closing"), 0, slog.LevelInfo, "", true},
		{"unavailable, connection gone, debug", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Unavailable, "transport is closing"), 0, slog.LevelDebug, "DEBUG", true},
		{"internal, connection gone", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Internal, "x"), 0, slog.LevelInfo, "ERROR", true},
		{"failed health", "/grpc.health.v1.Health/Check", logPolicy{}, status.Error(codes.Unavailable, "x"), 0, slog.LevelInfo, "WARN", false},
		{"internal", "/pkg.Svc/Get", logPolicy{}, status.Error(codes.Internal, "x"), 0, slog.LevelError, "ERROR", false},
		{"unknown error", "/pkg.Svc/Get", logPolicy{}, errors.New("plain"), 0, slog.LevelError, "ERROR", false},
		{"slow ok", "/pkg.Svc/Get", logPolicy{slow: slow}, nil, 2 * slow, slog.LevelWarn, "WARN", false},
		{"slow client error", "/pkg.Svc/Get", logPolicy{slow: slow}, status.Error(codes.NotFound, "x"), 2 * slow, slog.LevelWarn, "WARN", false},
		{"slow internal", "/pkg.Svc/Get", logPolicy{slow: slow}, status.Error(codes.Internal, "x"), 2 * slow, slog.LevelInfo, "ERROR", false},
		{"slow, threshold off", "/pkg.Svc/Get", logPolicy{}, nil, 2 * slow, slog.LevelDebug, "DEBUG", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := callLogger{log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.minLevel})), policy: tt.policy}
			handler := func(context.Context, any) (any, error) {
				time.Sleep(tt.took) // the call's duration is what is tested
				return nil, tt.err
			}
			ctx := context.Background()
			if tt.gone {
				cancelled, cancel := context.WithCancel(ctx)
				cancel()
				ctx = cancelled
			}
			_, err := l.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: tt.method}, handler)
			if !errors.Is(err, tt.err) {
				t.Errorf("unary returned %v, want the handler's %v", err, tt.err)
			}
			got := buf.String()
			switch {
			case tt.want == "" && got != "":
				t.Errorf("logged %s, want nothing", got)
			case tt.want != "" && !strings.Contains(got, `"level":"`+tt.want+`"`):
				t.Errorf("logged %q, want a line at %s", got, tt.want)
			}
			if wantSlow := tt.took > 0 && tt.policy.slow > 0; got != "" && strings.Contains(got, `"grpc.slow":true`) != wantSlow {
				t.Errorf("logged %s, want grpc.slow: %v", got, wantSlow)
			}
		})
	}
}

// TestSlowStreamNotLogged: a stream open for longer than the slow-call
// threshold is not slow; its client chose how long it lasts.
func TestSlowStreamNotLogged(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := callLogger{log: slog.New(slog.NewJSONHandler(&buf, nil)), policy: logPolicy{slow: time.Millisecond}}
	handler := func(any, grpc.ServerStream) error {
		time.Sleep(10 * time.Millisecond)
		return nil
	}
	info := &grpc.StreamServerInfo{FullMethod: "/pkg.Svc/Watch", IsServerStream: true}
	if err := l.stream(nil, fakeStream{}, info, handler); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "" {
		t.Errorf("a long stream logged %s, want nothing", got)
	}
}

// fakeStream is a server stream with only a context.
type fakeStream struct{ grpc.ServerStream }

func (fakeStream) Context() context.Context { return context.Background() }

// BenchmarkCallLogger measures the interceptor around a no-op handler that
// succeeds: "default" under an info-level logger and "warn" under a
// warn-level one write no line, "access-log" writes it (to a discarding
// JSON handler).
func BenchmarkCallLogger(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/tokencart.catalog.v1.CartService/GetCart"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	for _, bc := range []struct {
		name   string
		level  slog.Level
		policy logPolicy
	}{
		{"default", slog.LevelInfo, logPolicy{slow: defaultLogSlowCalls}},
		{"warn", slog.LevelWarn, logPolicy{slow: defaultLogSlowCalls}},
		{"access-log", slog.LevelInfo, logPolicy{accessLog: true, slow: defaultLogSlowCalls}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := callLogger{log: slog.New(slog.NewJSONHandler(discard{}, &slog.HandlerOptions{Level: bc.level})), policy: bc.policy}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, _ = l.unary(ctx, nil, info, handler)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
