package serve_test

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/serve"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() serve.Config {
		return serve.Config{Name: "catalogsvc", GRPCAddr: ":8082", AdminAddr: ":9082"}
	}
	tests := []struct {
		name    string
		mutate  func(*serve.Config)
		wantErr string // a substring naming the problem; "" for valid
	}{
		{"minimal", func(*serve.Config) {}, ""},
		{"everything set", func(c *serve.Config) {
			c.DrainDelay, c.ShutdownTimeout = 5*time.Second, 15*time.Second
			c.MaxConnectionAge, c.MaxConnectionAgeGrace = time.Minute, time.Second
			c.MaxRecvMsgSize, c.MaxConcurrentStreams = 4<<20, 100
			c.LogFormat, c.LogLevel = "json", slog.LevelDebug
		}, ""},
		{"ephemeral ports may repeat", func(c *serve.Config) { c.GRPCAddr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"no name", func(c *serve.Config) { c.Name = "" }, "name"},
		{"no grpc addr", func(c *serve.Config) { c.GRPCAddr = "" }, "--grpc-addr"},
		{"no admin addr", func(c *serve.Config) { c.AdminAddr = "" }, "--admin-addr"},
		{"addr without port", func(c *serve.Config) { c.GRPCAddr = "localhost" }, "--grpc-addr"},
		{"port out of range", func(c *serve.Config) { c.AdminAddr = ":70000" }, "--admin-addr"},
		{"named port", func(c *serve.Config) { c.AdminAddr = ":http" }, "--admin-addr"},
		{"same addr twice", func(c *serve.Config) { c.AdminAddr = c.GRPCAddr }, "must differ"},
		{"negative drain delay", func(c *serve.Config) { c.DrainDelay = -time.Second }, "--drain-delay"},
		{"negative shutdown timeout", func(c *serve.Config) { c.ShutdownTimeout = -1 }, "--shutdown-timeout"},
		{"negative connection age", func(c *serve.Config) { c.MaxConnectionAge = -1 }, "--max-connection-age"},
		{"negative connection age grace", func(c *serve.Config) { c.MaxConnectionAgeGrace = -1 }, "--max-connection-age-grace"},
		{"negative slow-call threshold", func(c *serve.Config) { c.LogSlowCalls = -time.Second }, "--log-slow-calls"},
		{"negative message size", func(c *serve.Config) { c.MaxRecvMsgSize = -1 }, "--max-recv-msg-size"},
		{"unknown log format", func(c *serve.Config) { c.LogFormat = "xml" }, "--log-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tt.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := (&serve.Config{Name: "x", GRPCAddr: ":1", AdminAddr: ":2", DrainDelay: -1, LogFormat: "xml"}).Validate()
	for _, want := range []string{"--drain-delay", "--log-format"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
}

// Not parallel: t.Setenv.
func TestRegisterFlagsWithEnv(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want serve.Config
	}{
		{
			name: "defaults",
			want: serve.Config{
				GRPCAddr: ":8082", AdminAddr: ":9082",
				DrainDelay: 5 * time.Second, ShutdownTimeout: 15 * time.Second,
				MaxConnectionAge: 30 * time.Second, MaxConnectionAgeGrace: 10 * time.Second,
				MaxRecvMsgSize: 1 << 20, MaxConcurrentStreams: 256,
				LogSlowCalls: 500 * time.Millisecond,
				LogFormat:    "text", LogLevel: slog.LevelInfo,
			},
		},
		{
			name: "flags and environment",
			args: []string{"--grpc-addr=:1", "--pprof", "--log-level=debug", "--max-concurrent-streams=7", "--access-log"},
			env: map[string]string{
				"CATALOGSVC_GRPC_ADDR":          ":2", // the flag wins
				"CATALOGSVC_ADMIN_ADDR":         ":3",
				"CATALOGSVC_DRAIN_DELAY":        "0s",
				"CATALOGSVC_SHUTDOWN_TIMEOUT":   "1m",
				"CATALOGSVC_MAX_CONNECTION_AGE": "2m", "CATALOGSVC_MAX_CONNECTION_AGE_GRACE": "3s",
				"CATALOGSVC_MAX_RECV_MSG_SIZE": "2048",
				"CATALOGSVC_LOG_FORMAT":        "json",
				"CATALOGSVC_LOG_SLOW_CALLS":    "0s",
			},
			want: serve.Config{
				GRPCAddr: ":1", AdminAddr: ":3",
				DrainDelay: 0, ShutdownTimeout: time.Minute,
				MaxConnectionAge: 2 * time.Minute, MaxConnectionAgeGrace: 3 * time.Second,
				MaxRecvMsgSize: 2048, MaxConcurrentStreams: 7, EnablePprof: true,
				AccessLog: true, LogSlowCalls: 0,
				LogFormat: "json", LogLevel: slog.LevelDebug,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var cfg serve.Config
			serve.RegisterFlags(fs, &cfg, ":8082", ":9082")
			if err := envflag.Parse(fs, "catalogsvc", tt.args); err != nil {
				t.Fatal(err)
			}
			if cfg != tt.want {
				t.Errorf("got  %+v\nwant %+v", cfg, tt.want)
			}
			cfg.Name = "catalogsvc"
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestRegisterFlagsRejectsBadStreams(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"-1", "4294967296", "many"} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cfg serve.Config
		serve.RegisterFlags(fs, &cfg, ":1", ":2")
		if err := fs.Parse([]string{"--max-concurrent-streams=" + v}); err == nil {
			t.Errorf("--max-concurrent-streams=%s accepted", v)
		}
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format, want string
	}{
		{"json", `"service":"svc"`},
		{"text", `service=svc`},
		{"", `service=svc`},
	}
	for _, tt := range tests {
		var buf expect.LogBuffer
		cfg := serve.Config{Name: "svc", LogFormat: tt.format, LogLevel: slog.LevelWarn}
		l := cfg.NewLogger(&buf)
		l.Info("hidden")
		l.Warn("shown")
		if out := buf.String(); !strings.Contains(out, tt.want) || !strings.Contains(out, "shown") || strings.Contains(out, "hidden") {
			t.Errorf("format %q: got %q, want a warn line with %s and no info line", tt.format, out, tt.want)
		}
	}
}
