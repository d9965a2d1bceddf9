package catalogsvc

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/grpcauth"
)

// cartServer implements CartService. The cart is always the caller's: its
// owner is the token's subject, which no request field can change.
type cartServer struct {
	catalogv1.UnimplementedCartServiceServer
	s *Service
}

// owner returns the verified subject of the call.
func owner(ctx context.Context) (string, error) {
	c, ok := grpcauth.ClaimsFrom(ctx)
	if !ok || c.Subject == "" {
		// Only reachable if the auth interceptor were missing: fail closed.
		return "", status.Error(codes.Unauthenticated, "authentication required")
	}
	return c.Subject, nil
}

func (c cartServer) GetCart(ctx context.Context, req *catalogv1.GetCartRequest) (*catalogv1.GetCartResponse, error) {
	who, err := owner(ctx)
	if err != nil {
		return nil, err
	}
	got, state, err := c.s.carts.Get(ctx, who, req.GetCartState())
	if err != nil {
		return nil, err
	}
	return &catalogv1.GetCartResponse{Cart: priceCart(got, c.s.snap.Load()), CartState: state}, nil
}

func (c cartServer) AddItem(ctx context.Context, req *catalogv1.AddItemRequest) (*catalogv1.AddItemResponse, error) {
	op := cart.Op{Kind: cart.Add, ProductID: req.GetProductId(), Quantity: req.GetQuantity()}
	err := firstError(validateProductID("product_id", op.ProductID), validateQuantity(op.Quantity, false))
	got, state, err := c.mutate(ctx, err, op, req.GetRequestId(), req.ExpectedVersion, req.GetCartState())
	if err != nil {
		return nil, err
	}
	return &catalogv1.AddItemResponse{Cart: got, CartState: state}, nil
}

func (c cartServer) SetItemQuantity(ctx context.Context, req *catalogv1.SetItemQuantityRequest) (*catalogv1.SetItemQuantityResponse, error) {
	op := cart.Op{Kind: cart.Set, ProductID: req.GetProductId(), Quantity: req.GetQuantity()}
	err := firstError(validateProductID("product_id", op.ProductID), validateQuantity(op.Quantity, true))
	got, state, err := c.mutate(ctx, err, op, req.GetRequestId(), req.ExpectedVersion, req.GetCartState())
	if err != nil {
		return nil, err
	}
	return &catalogv1.SetItemQuantityResponse{Cart: got, CartState: state}, nil
}

func (c cartServer) RemoveItem(ctx context.Context, req *catalogv1.RemoveItemRequest) (*catalogv1.RemoveItemResponse, error) {
	op := cart.Op{Kind: cart.Remove, ProductID: req.GetProductId()}
	err := validateProductID("product_id", op.ProductID)
	got, state, err := c.mutate(ctx, err, op, req.GetRequestId(), req.ExpectedVersion, req.GetCartState())
	if err != nil {
		return nil, err
	}
	return &catalogv1.RemoveItemResponse{Cart: got, CartState: state}, nil
}

func (c cartServer) ClearCart(ctx context.Context, req *catalogv1.ClearCartRequest) (*catalogv1.ClearCartResponse, error) {
	got, state, err := c.mutate(ctx, nil, cart.Op{Kind: cart.Clear}, req.GetRequestId(), req.ExpectedVersion, req.GetCartState())
	if err != nil {
		return nil, err
	}
	return &catalogv1.ClearCartResponse{Cart: got, CartState: state}, nil
}

// mutate is the common path of every cart change: opErr is the outcome
// of the op-specific validation, checked with the common fields before
// anything else runs; then one call to the cart backend, with the change
// computed against the current catalog.
func (c cartServer) mutate(ctx context.Context, opErr error, op cart.Op, requestID string, expected *int64, state []byte) (*catalogv1.Cart, []byte, error) {
	who, err := owner(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := firstError(opErr, validateRequestID(requestID), validateExpected(expected)); err != nil {
		return nil, nil, err
	}
	if expected != nil {
		op.ExpectedVersion, op.HasExpected = *expected, true
	}
	req := cart.Request{ID: requestID}
	if requestID != "" {
		req.Hash = op.Hash()
	}
	snap := c.s.snap.Load()
	apply := func(cur cart.Cart) (cart.Cart, bool, error) { return cart.Apply(cur, op, snap, time.Now()) }
	got, newState, err := c.s.carts.Mutate(ctx, who, state, req, apply)
	if err != nil {
		return nil, nil, err
	}
	return priceCart(got, c.s.snap.Load()), newState, nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// priceCart prices c from the catalog snapshot. A line whose product is
// gone is shown unavailable and counts for nothing.
func priceCart(c cart.Cart, snap *snapshot) *catalogv1.Cart {
	out := &catalogv1.Cart{Version: c.Version, Lines: make([]*catalogv1.CartLine, 0, len(c.Lines))}
	var subtotal amount
	for _, l := range c.Lines {
		line := &catalogv1.CartLine{ProductId: l.ProductID, Quantity: l.Quantity}
		if p, ok := snap.byID[l.ProductID]; ok {
			total := times(p.Price, l.Quantity)
			line.Name, line.UnitPrice, line.LineTotal, line.Available = p.Name, p.Price, total.money(), true
			subtotal = subtotal.plus(total)
			out.TotalQuantity += l.Quantity
		}
		out.Lines = append(out.Lines, line)
	}
	out.Subtotal = subtotal.money()
	if !c.UpdateTime.IsZero() {
		out.UpdateTime = timestamppb.New(c.UpdateTime)
	}
	return out
}

// amount is a non-negative sum of money in Currency. Prices are bounded by
// maxUnits, so no cart total overflows.
type amount struct{ units, nanos int64 }

func times(m *catalogv1.Money, q int64) amount {
	n := int64(m.GetNanos()) * q
	return amount{units: m.GetUnits()*q + n/nanosPerUnit, nanos: n % nanosPerUnit}
}

func (a amount) plus(b amount) amount {
	s := amount{units: a.units + b.units, nanos: a.nanos + b.nanos}
	if s.nanos >= nanosPerUnit {
		s.units++
		s.nanos -= nanosPerUnit
	}
	return s
}

func (a amount) money() *catalogv1.Money {
	return &catalogv1.Money{CurrencyCode: Currency, Units: a.units, Nanos: int32(a.nanos)}
}
