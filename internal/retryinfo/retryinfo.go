// Package retryinfo builds the gRPC errors that tell a client when to try
// again: a status with a google.rpc.RetryInfo detail (AIP-194), which
// clients and proxies read without parsing the message.
package retryinfo

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Error returns a status error with code and msg whose RetryInfo says to
// retry after the delay, rounded up to the millisecond (never zero).
func Error(code codes.Code, msg string, after time.Duration) error {
	after = max(after, 0).Truncate(time.Millisecond) + time.Millisecond
	st, err := status.New(code, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)})
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// Delay returns the retry delay that err carries, if it carries one.
func Delay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}
