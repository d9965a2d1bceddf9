package serve

import (
	"context"
	"fmt"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	defaultPollInterval = time.Second
	// checkTimeout bounds one run of the readiness checks.
	checkTimeout = 2 * time.Second
	// startupGrace is how long a server may be not ready from its start
	// (loading what it needs) before that is a warning.
	startupGrace = 10 * time.Second
)

// checkReadiness runs the readiness checks in order and returns the name and
// error of the first that fails, or "" and nil.
func (s *Server) checkReadiness(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	for _, c := range s.checks {
		if err := c.check(ctx); err != nil {
			return c.name, err
		}
	}
	return "", nil
}

// refreshHealth runs the readiness checks and, when the outcome changed,
// updates the gRPC health status of every service and logs the change.
// Only Run's goroutine (first) and then pollReadiness call it.
func (s *Server) refreshHealth(ctx context.Context) {
	name, err := s.checkReadiness(ctx)
	if ctx.Err() != nil {
		return // shutting down: the health server is already NOT_SERVING
	}
	st := healthpb.HealthCheckResponse_SERVING
	if err != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	starting := !s.everReady
	if st == s.lastStatus {
		// Not ready from the start: routine for a moment (a key set to
		// fetch), worth a warning once it lasts.
		if err != nil && starting && !s.warnedStart && time.Since(s.startTime) > startupGrace {
			s.warnedStart = true
			s.log.WarnContext(ctx, "still not ready", "check", name, "error", err, "since_start", time.Since(s.startTime).Round(time.Second).String())
		}
		return
	}
	switch {
	case err != nil && starting:
		s.log.InfoContext(ctx, "not ready yet", "check", name, "error", err)
	case err != nil:
		s.log.WarnContext(ctx, "not ready", "check", name, "error", err)
	case s.lastStatus != healthpb.HealthCheckResponse_UNKNOWN:
		s.log.InfoContext(ctx, "ready")
	}
	if err == nil {
		s.everReady = true
	}
	s.lastStatus = st
	for _, svc := range s.services {
		s.health.SetServingStatus(svc, st)
	}
}

// pollReadiness refreshes the health status every poll interval until ctx
// is done.
func (s *Server) pollReadiness(ctx context.Context) {
	t := time.NewTicker(s.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.refreshHealth(ctx)
		}
	}
}

// readinessError describes a failed readiness check for /readyz.
func readinessError(name string) string {
	return fmt.Sprintf("not ready: %s\n", name)
}
