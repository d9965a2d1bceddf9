// Package rpcerr is where a service's errors meet gRPC status codes: once,
// at the RPC edge. Handlers return plain errors, wrapped with %w as they
// rise; a Mapper, installed as the innermost interceptor, turns each into
// what the client is told:
//
//   - an error carrying a gRPC status (status.Error, or a type with a
//     GRPCStatus method) passes as that status; if it was wrapped with
//     more context, the context goes to the log, not to the client;
//   - the call's own cancellation or deadline becomes Canceled or
//     DeadlineExceeded;
//   - an error matching one of the service's Rules gets that rule's status;
//   - a database that cannot work now (sqldb.Transient) becomes
//     ErrStoreUnavailable, which clients retry;
//   - anything else becomes ErrInternal.
//
// The detail of the last two (and of rules marked Log) is logged once, as
// a field of the call's "finished call" line.
//
// Every status the Mapper returns carries a google.rpc.ErrorInfo in
// Domain (AIP-193): the one of an [Error], or else one whose reason is the
// code's name ("NOT_FOUND"). Services declare what clients are told as
// [Error] values: [Invalid] for a bad field (with a google.rpc.BadRequest),
// [Exhausted] for a limit (with a google.rpc.RetryInfo), [Errorf] for the
// rest, each with a stable reason.
package rpcerr

import (
	"context"
	"errors"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/sqldb"
)

// The statuses every service shares.
var (
	// ErrInternal is all a client learns of an unexpected failure.
	ErrInternal = Errorf(codes.Internal, ReasonInternal, "internal error")
	// ErrStoreUnavailable is a database that cannot work now: clients retry
	// Unavailable, and every mutation is idempotent (a request id, or a
	// conditional write), so a retry after a commit whose reply was lost
	// changes nothing twice.
	ErrStoreUnavailable = Errorf(codes.Unavailable, ReasonStoreUnavailable, "database unavailable; retry shortly")
)

// Rule maps the errors that match Target (errors.Is) to Status, best an
// [Error].
type Rule struct {
	Target error
	Status error
	// Log records the error's detail with the call: for outcomes the
	// client may retry but an operator should see (a missing signing key).
	Log bool
}

// Mapper turns handler errors into statuses by its rules.
type Mapper struct {
	log   *slog.Logger
	rules []Rule
}

// New returns a Mapper that applies rules in order and logs to log when
// the call has no logging interceptor.
func New(log *slog.Logger, rules ...Rule) *Mapper {
	return &Mapper{log: log, rules: rules}
}

// Status returns the status error the client gets for err (nil for nil),
// with an ErrorInfo.
func (m *Mapper) Status(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return withInfo(status.Convert(m.status(ctx, err))).Err()
}

func (m *Mapper) status(ctx context.Context, err error) error {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if any(se) != any(err) {
			m.logDetail(ctx, err)
		}
		return se.GRPCStatus().Err()
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return status.FromContextError(ctxErr).Err()
	}
	for _, r := range m.rules {
		if errors.Is(err, r.Target) {
			if r.Log {
				m.logDetail(ctx, err)
			}
			return r.Status
		}
	}
	m.logDetail(ctx, err)
	if sqldb.Transient(err) {
		return ErrStoreUnavailable
	}
	return ErrInternal
}

// UnaryServerInterceptor maps the errors of unary handlers.
func (m *Mapper) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, m.Status(ctx, err)
		}
		return resp, nil
	}
}

// StreamServerInterceptor maps the errors of stream handlers.
func (m *Mapper) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return m.Status(ss.Context(), handler(srv, ss))
	}
}

// logDetail records err with the call: on the logging interceptor's line
// for the finished call when there is one, on its own line otherwise.
func (m *Mapper) logDetail(ctx context.Context, err error) {
	if logging.ExtractFields(ctx) != nil {
		logging.AddFields(ctx, logging.Fields{"error.detail", err.Error()})
		return
	}
	method, _ := grpc.Method(ctx)
	m.log.ErrorContext(ctx, "request failed", "grpc.method", method, "error", err)
}
