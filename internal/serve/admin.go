package serve

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newAdminServer returns the admin HTTP server: metrics, probes, optional
// pprof and the WithHTTPHandler routes.
func (s *Server) newAdminServer(reg *prometheus.Registry, enablePprof bool, routes []route) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg, // counts scrape errors
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	if enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	for _, r := range routes {
		if err := handle(mux, r); err != nil {
			return nil, err
		}
	}
	// The write timeout is above pprof's default 30s CPU profile.
	return s.newHTTPServer(mux, 60*time.Second, 64<<10), nil
}

// handle registers r, turning ServeMux's panic on a bad or clashing pattern
// into an error for New to return.
func handle(mux *http.ServeMux, r route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("serve: admin route %q: %v", r.pattern, p)
		}
	}()
	if r.handler == nil {
		return fmt.Errorf("serve: admin route %q: nil handler", r.pattern)
	}
	mux.Handle(r.pattern, r.handler)
	return nil
}

// serveHealthz is the liveness probe: it answers while the process serves
// and deliberately checks nothing else, so a database outage makes the pod
// unready rather than restarting it.
func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// serveReadyz is the readiness probe: 200 when every readiness check passes,
// 503 naming the failing check, and 503 once shutdown has begun.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	}
	if name, err := s.checkReadiness(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, readinessError(name))
		return
	}
	fmt.Fprintln(w, "ok")
}
