package serve_test

import (
	"net/http"
	"testing"

	"github.com/tokencart/tokencart/internal/serve"
)

// TestPublicHTTP: WithPublicHTTP serves its handler, and only it, on a
// listener of its own; the admin routes are not there, and the handler is
// not on the admin port.
func TestPublicHTTP(t *testing.T) {
	t.Parallel()
	h := http.NewServeMux()
	h.HandleFunc("GET /.well-known/doc", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("public doc")) })
	ts := start(t, serve.Config{EnablePprof: true}, serve.WithPublicHTTP("127.0.0.1:0", h))
	pub := ts.PublicAddr()
	if pub == "" || pub == ts.AdminAddr() || pub == ts.GRPCAddr() {
		t.Fatalf("PublicAddr = %q (admin %q, gRPC %q)", pub, ts.AdminAddr(), ts.GRPCAddr())
	}
	tests := []struct {
		name, addr, path string
		want             int
	}{
		{"public document", pub, "/.well-known/doc", http.StatusOK},
		{"no metrics on the public port", pub, "/metrics", http.StatusNotFound},
		{"no pprof on the public port", pub, "/debug/pprof/", http.StatusNotFound},
		{"no probes on the public port", pub, "/readyz", http.StatusNotFound},
		{"public document not on the admin port", ts.AdminAddr(), "/.well-known/doc", http.StatusNotFound},
		{"metrics still on the admin port", ts.AdminAddr(), "/metrics", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := httpGet(t, tt.addr, tt.path); code != tt.want {
				t.Errorf("GET %s%s = %d %q, want %d", tt.addr, tt.path, code, body, tt.want)
			}
		})
	}
}

// TestWithoutPublicHTTP: no third listener unless asked for.
func TestWithoutPublicHTTP(t *testing.T) {
	t.Parallel()
	if got := start(t, serve.Config{}).PublicAddr(); got != "" {
		t.Errorf("PublicAddr = %q without WithPublicHTTP", got)
	}
}

func TestPublicHTTPBadAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"", "no-port", "127.0.0.1:70000"} {
		_, err := serve.New(serve.Config{Name: "x", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"},
			serve.WithPublicHTTP(addr, http.NotFoundHandler()))
		if err == nil {
			t.Errorf("New accepted public address %q", addr)
		}
	}
}
