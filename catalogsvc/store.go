package catalogsvc

import (
	"context"
	"errors"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// ErrNotFound is what a Store wraps (with %w) around a missing product.
var ErrNotFound = errors.New("not found")

// requestRetention is how long idempotency keys are kept at least: the
// service prunes keys older than this (and an hour more, for clock skew).
const requestRetention = 24 * time.Hour

// Store is the state catalogsvc's replicas share: the products, the
// catalog's change counter, the carts and the carts' idempotency keys. The
// catalogsvc/store package implements it over SQLite and PostgreSQL. Times
// go in and out with microsecond precision.
type Store interface {
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// CatalogVersion returns the catalog's change counter, which every
	// product write moves.
	CatalogVersion(ctx context.Context) (int64, error)
	// Products returns every product, ordered by id.
	Products(ctx context.Context) ([]Product, error)
	// UpsertProduct creates or replaces p.
	UpsertProduct(ctx context.Context, p Product) error
	// DeleteProduct removes the product id (ErrNotFound if absent).
	DeleteProduct(ctx context.Context, id string) error
	// SeedProducts inserts products unless a seed was ever loaded (by any
	// replica, whatever has been deleted since), and reports whether it did.
	SeedProducts(ctx context.Context, products []Product) (bool, error)
	// Cart returns owner's cart, the empty cart at version 0 if none.
	Cart(ctx context.Context, owner string) (cart.Cart, error)
	// MutateCart changes owner's cart as cart.Decide says, in one
	// transaction that holds the cart against every other writer, and
	// returns the resulting cart.
	MutateCart(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error)
	// PruneRequests deletes idempotency keys created before cutoff.
	PruneRequests(ctx context.Context, cutoff time.Time) (int64, error)
}

// Product is a catalog entry as stored.
type Product struct {
	ID, Name, Description, Category string
	// Price: Currency, Units and Nanos as in google.type.Money.
	Currency   string
	Units      int64
	Nanos      int32
	UpdateTime time.Time
}
