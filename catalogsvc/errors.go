package catalogsvc

import (
	"log/slog"
	"strconv"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/internal/rpcerr"
)

// Reasons (google.rpc.ErrorInfo, domain rpcerr.Domain) of catalogsvc's
// errors, besides rpcerr's and grpcauth's.
const (
	// ReasonProductNotFound: no product has the id.
	ReasonProductNotFound = "PRODUCT_NOT_FOUND"
	// ReasonCartVersionMismatch: the cart is not at expected_version; read
	// it again and decide.
	ReasonCartVersionMismatch = "CART_VERSION_MISMATCH"
	// ReasonCartLimit: the change would take the cart over its bounds;
	// metadata "max_lines" and "max_quantity" give them.
	ReasonCartLimit = "CART_LIMIT"
	// ReasonRequestIDReused: request_id was used for another change.
	ReasonRequestIDReused = "REQUEST_ID_REUSED"
	// ReasonCartStateForeign: cart_state was sealed for another user.
	ReasonCartStateForeign = "CART_STATE_FOREIGN"
	// ReasonCartStateInvalid: cart_state cannot be used (tampered, too
	// large, or sealed with a retired key): start a new cart.
	ReasonCartStateInvalid = "CART_STATE_INVALID"
)

// invalid is a request that fails validation: InvalidArgument naming the
// field (safe to show: it echoes no input).
func invalid(field, format string, args ...any) error {
	return rpcerr.Invalid(field, format, args...)
}

var (
	errProductNotFound  = rpcerr.Errorf(codes.NotFound, ReasonProductNotFound, "no such product")
	errInvalidCartState = rpcerr.Invalid("cart_state", "invalid or tampered").WithReason(ReasonCartStateInvalid)
)

// errorRules are catalogsvc's expected outcomes and what clients are told
// of each; errors are mapped once, at the RPC edge (package rpcerr).
var errorRules = []rpcerr.Rule{
	{Target: cart.ErrVersionMismatch, Status: rpcerr.Errorf(codes.Aborted, ReasonCartVersionMismatch, "the cart is not at expected_version")},
	{Target: cart.ErrUnknownProduct, Status: errProductNotFound},
	{Target: ErrNotFound, Status: errProductNotFound},
	{Target: cart.ErrLimit, Status: rpcerr.Errorf(codes.FailedPrecondition, ReasonCartLimit, "a cart holds at most %d lines of at most %d each", cart.MaxLines, cart.MaxQuantity).
		With("max_lines", strconv.Itoa(cart.MaxLines)).With("max_quantity", strconv.Itoa(cart.MaxQuantity))},
	{Target: cart.ErrRequestReused, Status: rpcerr.Invalid("request_id", "already used with different parameters").WithReason(ReasonRequestIDReused)},
	{Target: cartstate.ErrForeign, Status: rpcerr.Errorf(codes.PermissionDenied, ReasonCartStateForeign, "cart_state belongs to another user")},
	{Target: cartstate.ErrTooLarge, Status: rpcerr.Invalid("cart_state", "larger than %d bytes", cartstate.MaxSize).WithReason(ReasonCartStateInvalid)},
	{Target: cartstate.ErrUnknownKey, Status: rpcerr.Invalid("cart_state", "sealed with a key no longer accepted; start a new cart").WithReason(ReasonCartStateInvalid)},
	{Target: cartstate.ErrMalformed, Status: errInvalidCartState},
	{Target: cartstate.ErrTampered, Status: errInvalidCartState},
	{Target: cartstate.ErrInvalidCart, Status: errInvalidCartState},
}

func newErrorMapper(log *slog.Logger) *rpcerr.Mapper { return rpcerr.New(log, errorRules...) }
