package main

import (
	"context"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/tokencart/tokencart/client"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// cartResponse is what every CartService response has.
type cartResponse interface {
	proto.Message
	GetCart() *catalogv1.Cart
	GetCartState() []byte
}

func cartCommand(ctx context.Context, args []string, target string, st state, out func(proto.Message) error) error {
	if len(args) == 0 {
		return usageError("cart takes show, add, set, remove or clear")
	}
	tok, err := st.token()
	if err != nil {
		return err
	}
	cartState, err := st.cartState()
	if err != nil {
		return err
	}
	conn, err := client.Dial(target, client.Options{})
	if err != nil {
		return err
	}
	defer conn.Close()
	cart := catalogv1.NewCartServiceClient(conn)
	ctx = client.WithToken(ctx, tok)

	var resp cartResponse
	switch sub, a := args[0], args[1:]; sub {
	case "show":
		resp, err = cart.GetCart(ctx, &catalogv1.GetCartRequest{CartState: cartState})
	case "add":
		if len(a) < 1 || len(a) > 2 {
			return usageError("cart add takes PRODUCT [QTY]")
		}
		qty := int64(1)
		if len(a) == 2 {
			if qty, err = strconv.ParseInt(a[1], 10, 64); err != nil {
				return usageError("QTY must be a whole number")
			}
		}
		resp, err = cart.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: a[0], Quantity: qty, CartState: cartState})
	case "set":
		if len(a) != 2 {
			return usageError("cart set takes PRODUCT QTY")
		}
		qty, perr := strconv.ParseInt(a[1], 10, 64)
		if perr != nil {
			return usageError("QTY must be a whole number")
		}
		resp, err = cart.SetItemQuantity(ctx, &catalogv1.SetItemQuantityRequest{ProductId: a[0], Quantity: qty, CartState: cartState})
	case "remove":
		if len(a) != 1 {
			return usageError("cart remove takes PRODUCT")
		}
		resp, err = cart.RemoveItem(ctx, &catalogv1.RemoveItemRequest{ProductId: a[0], CartState: cartState})
	case "clear":
		resp, err = cart.ClearCart(ctx, &catalogv1.ClearCartRequest{CartState: cartState})
	default:
		return usageError("unknown cart command " + strconv.Quote(sub))
	}
	if err != nil {
		return err
	}
	if err := st.saveCartState(resp.GetCartState()); err != nil {
		return err
	}
	return out(resp.GetCart())
}
