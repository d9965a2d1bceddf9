package serve

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const (
	defaultPollInterval = time.Second
	// checkTimeout bounds one run of the readiness checks.
	checkTimeout = 2 * time.Second
)

// healthService is grpc-go's health server, with Watch streams ended when the
// server stops: GracefulStop waits for every open stream, and clients using
// client-side health checking keep a Watch open for the connection's life.
type healthService struct {
	*health.Server
	stopping <-chan struct{} // closed when GracefulStop begins
}

// Watch streams status changes until the client leaves or the server stops.
func (h healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(req, watchStream{Health_WatchServer: stream, ctx: ctx})
	select {
	case <-h.stopping:
		return status.Error(codes.Unavailable, "server is shutting down")
	default:
		return err
	}
}

type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }

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
	if st == s.lastStatus {
		return
	}
	if err != nil {
		s.log.WarnContext(ctx, "not ready", "check", name, "error", err)
	} else if s.lastStatus != healthpb.HealthCheckResponse_UNKNOWN {
		s.log.InfoContext(ctx, "ready")
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
