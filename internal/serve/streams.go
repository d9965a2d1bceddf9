package serve

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/internal/rpcerr"
)

// errShuttingDown ends the streams still open when the server stops.
var errShuttingDown = rpcerr.Errorf(codes.Unavailable, "SHUTTING_DOWN", "server shutting down; reconnect")

// endStreamsAtStop ends every stream when GracefulStop begins, which waits
// for open streams: long-lived ones (a health Watch, a revocation feed)
// would otherwise hold the stop up until ShutdownTimeout. The handler sees
// its context cancelled, and the client gets Unavailable, which it retries
// elsewhere or once the server is back. A handler blocked in Recv does not
// see the cancellation (gRPC offers no way to interrupt it short of Stop):
// streaming handlers must wait on their context.
func (s *Server) endStreamsAtStop(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()
	err := handler(srv, contextStream{ServerStream: ss, ctx: ctx})
	if err != nil && s.stopCtx.Err() != nil && ss.Context().Err() == nil {
		return errShuttingDown
	}
	return err
}
