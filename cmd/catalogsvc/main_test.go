package main

import (
	"os"
	"testing"
)

// TestRunRejectsBadConfig: an invalid configuration exits 2 before anything
// is opened; -h exits 0.
func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"request mode without a key", []string{"--cart-mode=request", "--dsn=" + t.TempDir() + "/x.db"}, 2},
		{"unknown flag", []string{"--no-such-flag"}, 2},
		{"bad stale policy", []string{"--stale-policy=ignore"}, 2},
		{"negative rate limit", []string{"--rate-limit=-5"}, 2},
		{"client certificate for authsvc without a CA", []string{"--auth-tls-cert=c.pem", "--auth-tls-key=k.pem"}, 2},
		{"missing authsvc CA file", []string{"--auth-tls-ca=" + t.TempDir() + "/none.pem"}, 2},
		{"help", []string{"-h"}, 0},
	}
	t.Setenv("CATALOGSVC_CART_KEY", "")
	stderr := os.Stderr
	t.Cleanup(func() { os.Stderr = stderr })
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Args = append([]string{"catalogsvc"}, tt.args...)
			os.Stderr = devnull
			got := run()
			os.Stderr = stderr
			if got != tt.want {
				t.Errorf("exit %d, want %d", got, tt.want)
			}
		})
	}
}
