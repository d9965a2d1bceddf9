package catalogsvc

import (
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/internal/rpcerr"
)

// invalidError is a request that fails validation: InvalidArgument, with a
// message naming the field (safe to show: it echoes no input).
type invalidError struct {
	field, problem string
}

func (e *invalidError) Error() string { return e.field + ": " + e.problem }

// GRPCStatus makes the error its own status (see rpcerr).
func (e *invalidError) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, e.Error())
}

func invalid(field, format string, args ...any) error {
	return &invalidError{field: field, problem: fmt.Sprintf(format, args...)}
}

// errorRules are catalogsvc's expected outcomes and what clients are told
// of each; errors are mapped once, at the RPC edge (package rpcerr).
var errorRules = []rpcerr.Rule{
	{Target: cart.ErrVersionMismatch, Status: status.Error(codes.Aborted, "the cart is not at expected_version")},
	{Target: cart.ErrUnknownProduct, Status: status.Error(codes.NotFound, "no such product")},
	{Target: ErrNotFound, Status: status.Error(codes.NotFound, "no such product")},
	{Target: cart.ErrLimit, Status: status.Errorf(codes.FailedPrecondition, "a cart holds at most %d lines of at most %d each", cart.MaxLines, cart.MaxQuantity)},
	{Target: cart.ErrRequestReused, Status: status.Error(codes.InvalidArgument, "request_id: already used with different parameters")},
	{Target: cartstate.ErrForeign, Status: status.Error(codes.PermissionDenied, "cart_state belongs to another user")},
	{Target: cartstate.ErrTooLarge, Status: status.Errorf(codes.InvalidArgument, "cart_state: larger than %d bytes", cartstate.MaxSize)},
	{Target: cartstate.ErrUnknownKey, Status: status.Error(codes.InvalidArgument, "cart_state: sealed with a key no longer accepted; start a new cart")},
	{Target: cartstate.ErrMalformed, Status: errInvalidCartState},
	{Target: cartstate.ErrTampered, Status: errInvalidCartState},
	{Target: cartstate.ErrInvalidCart, Status: errInvalidCartState},
}

var errInvalidCartState = status.Error(codes.InvalidArgument, "cart_state: invalid or tampered")

func newErrorMapper(log *slog.Logger) *rpcerr.Mapper { return rpcerr.New(log, errorRules...) }
