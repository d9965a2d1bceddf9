package catalogsvc

import (
	"context"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// cartBackend is where carts live: the store (storeCarts) or the requests
// themselves (cartstate.Carts). state is the request's cart_state and the
// returned []byte the response's (nil in store mode). Both decide each
// change with cart.Decide.
type cartBackend interface {
	Get(ctx context.Context, owner string, state []byte) (cart.Cart, []byte, error)
	Mutate(ctx context.Context, owner string, state []byte, req cart.Request, apply cart.ApplyFunc) (cart.Cart, []byte, error)
}

// storeCarts keeps carts in the Store; cart_state is ignored.
type storeCarts struct{ store Store }

func (b storeCarts) Get(ctx context.Context, owner string, _ []byte) (cart.Cart, []byte, error) {
	c, err := b.store.Cart(ctx, owner)
	return c, nil, err
}

func (b storeCarts) Mutate(ctx context.Context, owner string, _ []byte, req cart.Request, apply cart.ApplyFunc) (cart.Cart, []byte, error) {
	c, err := b.store.MutateCart(ctx, owner, req, apply)
	return c, nil, err
}
