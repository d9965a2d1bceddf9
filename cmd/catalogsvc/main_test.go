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

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/catalogsvc"
)

// TestMain lets a test run the real main in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("CATALOGSVC_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestBadConfigExitsTwo: an invalid configuration exits 2, naming the flag,
// before anything is opened; -h exits 0.
func TestBadConfigExitsTwo(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"request mode without a key", []string{"--cart-mode=request", "--dsn=" + t.TempDir() + "/x.db"}, 2, "--cart-key"},
		{"unknown flag", []string{"--no-such-flag"}, 2, "no-such-flag"},
		{"bad stale policy", []string{"--stale-policy=ignore"}, 2, "--stale-policy"},
		{"negative rate limit", []string{"--rate-limit=-5"}, 2, "--rate-limit"},
		{"client certificate for authsvc without a CA", []string{"--auth-tls-cert=c.pem", "--auth-tls-key=k.pem"}, 2, "--auth-tls-ca"},
		{"missing authsvc CA file", []string{"--auth-tls-ca=" + t.TempDir() + "/none.pem"}, 2, "--auth-tls-ca"},
		{"help", []string{"-h"}, 0, "-cart-mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tt.args...)
			cmd.Env = append(os.Environ(), "CATALOGSVC_TEST_RUN_MAIN=1", "CATALOGSVC_CART_KEY=")
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != tt.wantCode {
				t.Fatalf("exit %v (%v), want %d; output:\n%s", cmd.ProcessState, err, tt.wantCode, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output does not name %s:\n%s", tt.want, out)
			}
		})
	}
}

// TestRunStops runs the wiring of main to its end: everything starts (the
// authsvc connection is lazy), and a cancelled context stops it cleanly.
func TestRunStops(t *testing.T) {
	cfg := catalogsvc.DefaultConfig()
	cfg.DSN = filepath.Join(t.TempDir(), "catalogsvc.db")
	cfg.Serve.GRPCAddr, cfg.Serve.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Serve.DrainDelay = 0
	cfg.Serve.LogLevel = slog.LevelError
	cfg.Auth.Addr = "127.0.0.1:1"
	cfg.Auth.ServiceCredential = authsvctest.TestServiceCredential
	// Long enough to start on a busy machine.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := run(ctx, &cfg); err != nil {
		t.Fatalf("run: %v", err)
	}
}
