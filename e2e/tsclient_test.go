package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTypeScriptClient runs the TypeScript client's Node.js test
// (clients/ts/test) against authsvc and two catalogsvc replicas, in both
// cart modes: stubs that buf generated with protoc-gen-es, called over
// gRPC by Connect's Node.js transport, register, log in, refresh and use a
// cart written through one replica and read through the other.
func TestTypeScriptClient(t *testing.T) {
	dir := tsClientDir(t)
	tests := []struct {
		name        string
		catalogArgs func() []string
	}{
		{"store", func() []string { return nil }},
		{"request", func() []string {
			var k [32]byte
			_, _ = rand.Read(k[:])
			return []string{"--cart-mode", "request", "--cart-key", base64.StdEncoding.EncodeToString(k[:])}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, clusterConfig{
				authDSN:     filepath.Join(t.TempDir(), "auth.db"),
				catalogDSN:  filepath.Join(t.TempDir(), "catalog.db"),
				catalogArgs: tt.catalogArgs(),
			})
			replicas := []string{c.addReplica(), c.addReplica()}

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", "test/")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"TOKENCART_AUTH_ADDR="+c.authAddr,
				"TOKENCART_CATALOG_ADDRS="+strings.Join(replicas, ","),
			)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node --test: %v\n%s", err, out)
			}
			// A file the runner did not find passes with no tests.
			if !strings.Contains(string(out), "a bad quantity is INVALID_ARGUMENT") {
				t.Fatalf("node --test ran none of the client's tests:\n%s", out)
			}
		})
	}
}

// tsClientDir returns the TypeScript client's directory, skipping t when
// Node.js or its packages (make node) are missing, or failing it under
// CI=true, where .ci/run installs them.
func tsClientDir(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "clients", "ts")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node not on PATH (install Node.js 20 or later)"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "@connectrpc", "connect-node")); err != nil {
		missing = "clients/ts has no node_modules (run make node)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(missing)
		}
		t.Skip("skipping: " + missing)
	}
	return dir
}
