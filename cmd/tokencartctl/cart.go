package main

import (
	"context"
	"strconv"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

func (a *app) catalog() (*catalogClients, error) {
	conn, err := a.dial(&a.catalogConn, a.catalogAddr)
	if err != nil {
		return nil, err
	}
	return &catalogClients{catalog: catalogv1.NewCatalogServiceClient(conn), cart: catalogv1.NewCartServiceClient(conn)}, nil
}

type catalogClients struct {
	catalog catalogv1.CatalogServiceClient
	cart    catalogv1.CartServiceClient
}

// products lists the whole catalog (or one category), page by page.
func (a *app) products(ctx context.Context, category string) error {
	c, err := a.catalog()
	if err != nil {
		return err
	}
	all := &catalogv1.ListProductsResponse{}
	req := &catalogv1.ListProductsRequest{PageSize: 100, Category: category}
	for {
		resp, err := c.catalog.ListProducts(ctx, req)
		if err != nil {
			return err
		}
		all.Products = append(all.Products, resp.GetProducts()...)
		if resp.GetNextPageToken() == "" {
			return a.out.products(all)
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// cartResponse is what every CartService response has.
type cartResponse interface {
	GetCart() *catalogv1.Cart
	GetCartState() []byte
}

// cart runs the cart subcommand sub, carrying the request-mode cart state
// from the last response to the next request.
func (a *app) cart(ctx context.Context, sub string, args []string) error {
	var qty int64
	switch sub {
	case "show", "clear":
		if len(args) != 0 {
			return usageError("cart " + sub + " takes no arguments")
		}
	case "add":
		if len(args) < 1 || len(args) > 2 {
			return usageError("cart add takes PRODUCT [QTY]")
		}
		qty = 1
		if len(args) == 2 {
			var err error
			if qty, err = strconv.ParseInt(args[1], 10, 64); err != nil {
				return usageError("QTY must be a whole number")
			}
		}
	case "set":
		if len(args) != 2 {
			return usageError("cart set takes PRODUCT QTY")
		}
		var err error
		if qty, err = strconv.ParseInt(args[1], 10, 64); err != nil {
			return usageError("QTY must be a whole number")
		}
	case "remove":
		if len(args) != 1 {
			return usageError("cart remove takes PRODUCT")
		}
	default:
		return usageError("unknown cart command " + strconv.Quote(sub))
	}
	cartState, err := a.st.cartState()
	if err != nil {
		return err
	}
	c, err := a.catalog()
	if err != nil {
		return err
	}
	// One request message for both attempts, so that a retry after a
	// refresh carries the request_id the client filled in.
	var call func(ctx context.Context) (cartResponse, error)
	switch sub {
	case "show":
		req := &catalogv1.GetCartRequest{CartState: cartState}
		call = func(ctx context.Context) (cartResponse, error) { return c.cart.GetCart(ctx, req) }
	case "add":
		req := &catalogv1.AddItemRequest{ProductId: args[0], Quantity: qty, CartState: cartState}
		call = func(ctx context.Context) (cartResponse, error) { return c.cart.AddItem(ctx, req) }
	case "set":
		req := &catalogv1.SetItemQuantityRequest{ProductId: args[0], Quantity: qty, CartState: cartState}
		call = func(ctx context.Context) (cartResponse, error) { return c.cart.SetItemQuantity(ctx, req) }
	case "remove":
		req := &catalogv1.RemoveItemRequest{ProductId: args[0], CartState: cartState}
		call = func(ctx context.Context) (cartResponse, error) { return c.cart.RemoveItem(ctx, req) }
	case "clear":
		req := &catalogv1.ClearCartRequest{CartState: cartState}
		call = func(ctx context.Context) (cartResponse, error) { return c.cart.ClearCart(ctx, req) }
	}
	var resp cartResponse
	err = a.authed(ctx, func(ctx context.Context) error {
		var err error
		resp, err = call(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if err := a.st.saveCartState(resp.GetCartState()); err != nil {
		return err
	}
	return a.out.cart(resp.GetCart())
}
