package catalogsvc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/internal/cartstate"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// invalidError is a request that fails validation: InvalidArgument, with a
// message naming the field (safe to show: it echoes no input).
type invalidError struct {
	field, problem string
}

func (e *invalidError) Error() string { return e.field + ": " + e.problem }

func invalid(field, format string, args ...any) error {
	return &invalidError{field: field, problem: fmt.Sprintf(format, args...)}
}

// errBadCartState wraps a request-carried cart whose content, although
// authentic, does not decode: InvalidArgument, like a tampered one.
var errBadCartState = errors.New("cart_state does not hold a valid cart")

// errInternal is all a client learns of an unexpected failure.
var errInternal = status.Error(codes.Internal, "internal error")

// errStoreUnavailable is a store that cannot work now (sqldb.Transient):
// clients retry Unavailable, and mutations carry a request_id, so a retry
// after a commit whose reply was lost is applied once.
var errStoreUnavailable = status.Error(codes.Unavailable, "database unavailable; retry shortly")

// toStatus is the one translation of catalogsvc's errors to gRPC status
// errors. Expected outcomes get their canonical code and a fixed message;
// anything else is Internal with a generic message, and only then is the
// detail logged (once, here).
func (s *Service) toStatus(ctx context.Context, err error) error {
	var inv *invalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, inv.Error())
	case errors.Is(err, cart.ErrVersionMismatch):
		return status.Error(codes.Aborted, "the cart is not at expected_version")
	case errors.Is(err, cart.ErrUnknownProduct):
		return status.Error(codes.NotFound, "no such product")
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "no such product")
	case errors.Is(err, cart.ErrLimit):
		return status.Errorf(codes.FailedPrecondition, "a cart holds at most %d lines of at most %d each", cart.MaxLines, cart.MaxQuantity)
	case errors.Is(err, cart.ErrRequestReused):
		return status.Error(codes.InvalidArgument, "request_id: already used with different parameters")
	case errors.Is(err, cartstate.ErrForeign):
		return status.Error(codes.PermissionDenied, "cart_state belongs to another user")
	case errors.Is(err, cartstate.ErrTooLarge):
		return status.Errorf(codes.InvalidArgument, "cart_state: larger than %d bytes", cartstate.MaxSize)
	case errors.Is(err, cartstate.ErrUnknownKey):
		return status.Error(codes.InvalidArgument, "cart_state: sealed with a key no longer accepted; start a new cart")
	case errors.Is(err, cartstate.ErrMalformed), errors.Is(err, cartstate.ErrTampered), errors.Is(err, errBadCartState):
		return status.Error(codes.InvalidArgument, "cart_state: invalid or tampered")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status, e.g. from grpcauth.RequireRole
	}
	method, _ := grpc.Method(ctx)
	if sqldb.Transient(err) {
		s.log.WarnContext(ctx, "store unavailable", "grpc.method", method, "error", err)
		return errStoreUnavailable
	}
	s.log.ErrorContext(ctx, "request failed", "grpc.method", method, "error", err)
	return errInternal
}
