package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
)

// TestMain lets a test run the real main in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("AUTHSVC_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestBadConfigExitsTwo(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"bad flag value", []string{"--token-lifetime=-1s"}, nil, "--token-lifetime"},
		{"unknown flag", []string{"--no-such-flag"}, nil, "no-such-flag"},
		{"bad key-encryption key from env", nil, []string{"AUTHSVC_KEY_ENCRYPTION_KEY=too-short"}, "--key-encryption-key"},
		{"publish delay shorter than the refresh", []string{"--key-publish-delay=1s"}, nil, "--key-publish-delay"},
		{"publish delay shorter than the promised cache lifetime", []string{"--jwks-max-age=30m"}, nil,
			"--key-publish-delay (25m0s) must be at least --key-reload-interval (5s) + --jwks-max-age (30m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tt.args...)
			cmd.Env = append(append(os.Environ(), "AUTHSVC_TEST_RUN_MAIN=1"), tt.env...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit %v (%v), want 2; output:\n%s", cmd.ProcessState, err, out)
			}
			if !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "too-short") {
				t.Errorf("output does not name %s (or echoes a secret):\n%s", tt.want, out)
			}
		})
	}
}

// TestRunStops runs the wiring of main to its end: everything starts, and
// a cancelled context stops it cleanly.
func TestRunStops(t *testing.T) {
	cfg := authsvc.DefaultConfig()
	cfg.DSN = filepath.Join(t.TempDir(), "authsvc.db")
	cfg.Serve.GRPCAddr, cfg.Serve.AdminAddr, cfg.PublicAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Serve.DrainDelay = 0
	cfg.Serve.LogLevel = slog.LevelError
	// Long enough to start on a busy machine.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := run(ctx, &cfg); err != nil {
		t.Fatalf("run: %v", err)
	}
}
