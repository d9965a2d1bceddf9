package serve

import (
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
)

// logPolicy decides which finished calls the logging interceptor writes,
// and at what level. Successful calls cost a log line each at the rate
// the services serve them (a JSON line per call took a quarter of GetCart's
// throughput, bench/RESULTS.md) and say nothing the metrics do not, so by
// default they have none; what an operator needs a line for is a failure,
// with its detail, or a call that took too long.
//
//   - OK, and Canceled (the caller's choice): debug; so is Unavailable when
//     the call's context was already done: the client's connection went
//     away under the call (a routine reconnect after GOAWAY, a client that
//     stopped), which says nothing about the server;
//   - the client's errors (a bad request, a missing token, a refusal, a
//     conflict): info;
//   - errors that may be the server's or its dependencies' but that clients
//     retry (Unavailable, DeadlineExceeded) and Unimplemented: warn;
//   - the server's own errors (Internal, Unknown, DataLoss): error;
//   - a unary call slower than slow, whatever its code: at least warn. A
//     stream's length is its client's choice (the revocation feed stays
//     open for minutes), so streams are never slow.
//
// With accessLog every call has a line, at info or above.
type logPolicy struct {
	accessLog bool
	slow      time.Duration // 0: no call is slow
}

// defaultLogSlowCalls is the flag default of the slow-call threshold: far
// above any call's p99 in bench/RESULTS.md, far below a client's deadline.
const defaultLogSlowCalls = 500 * time.Millisecond

// isSlow reports whether a call of methodType that took elapsed is slow.
func (p logPolicy) isSlow(methodType string, elapsed time.Duration) bool {
	return p.slow > 0 && methodType == "unary" && elapsed >= p.slow
}

// level returns the level of the line of a call that ended with code;
// gone says that the call's context was done when it ended.
func (p logPolicy) level(code codes.Code, slow, gone bool) slog.Level {
	level := codeLevel(code)
	if gone && code == codes.Unavailable {
		level = codeLevel(codes.Canceled)
	}
	if p.accessLog {
		level = max(level, slog.LevelInfo)
	}
	if slow {
		level = max(level, slog.LevelWarn)
	}
	return level
}

// codeLevel is the level of a call that ended with code, by whose failure
// the code usually means.
func codeLevel(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.Canceled:
		return slog.LevelDebug
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange:
		return slog.LevelInfo
	case codes.Unavailable, codes.DeadlineExceeded, codes.Unimplemented:
		return slog.LevelWarn
	default: // Internal, Unknown, DataLoss, and any code gRPC may add
		return slog.LevelError
	}
}
