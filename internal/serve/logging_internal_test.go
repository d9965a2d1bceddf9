package serve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCallLoggerLevels: a call's line has the level of its code, successful
// health checks are at debug, and a line below the logger's level is not
// written.
func TestCallLoggerLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		err      error
		minLevel slog.Level
		want     string // the line's level, "" for no line
	}{
		{"ok at info", "/pkg.Svc/Get", nil, slog.LevelInfo, "INFO"},
		{"ok below warn", "/pkg.Svc/Get", nil, slog.LevelWarn, ""},
		{"unavailable at warn", "/pkg.Svc/Get", status.Error(codes.Unavailable, "x"), slog.LevelWarn, "WARN"},
		{"internal at error", "/pkg.Svc/Get", status.Error(codes.Internal, "x"), slog.LevelError, "ERROR"},
		{"health at debug", "/grpc.health.v1.Health/Check", nil, slog.LevelDebug, "DEBUG"},
		{"health hidden at info", "/grpc.health.v1.Health/Check", nil, slog.LevelInfo, ""},
		{"failed health at warn", "/grpc.health.v1.Health/Check", status.Error(codes.Unavailable, "x"), slog.LevelInfo, "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := callLogger{log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.minLevel}))}
			handler := func(context.Context, any) (any, error) { return nil, tt.err }
			_, err := l.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: tt.method}, handler)
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
		})
	}
}

// BenchmarkCallLogger measures the interceptor around a no-op handler:
// "quiet" is a successful call under a warn-level logger (no line), "info"
// writes the line (to a discarding JSON handler).
func BenchmarkCallLogger(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/tokencart.catalog.v1.CartService/GetCart"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	for _, bc := range []struct {
		name  string
		level slog.Level
	}{{"quiet", slog.LevelWarn}, {"info", slog.LevelInfo}} {
		b.Run(bc.name, func(b *testing.B) {
			l := callLogger{log: slog.New(slog.NewJSONHandler(discard{}, &slog.HandlerOptions{Level: bc.level}))}
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
