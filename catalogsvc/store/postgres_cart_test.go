package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

type anyProduct struct{}

func (anyProduct) Has(string) bool { return true }

func change(op cart.Op) cart.ApplyFunc {
	return func(c cart.Cart) (cart.Cart, bool, error) { return cart.Apply(c, op, anyProduct{}, time.Now()) }
}

func addOne(id string) cart.Op { return cart.Op{Kind: cart.Add, ProductID: id, Quantity: 1} }

// TestPostgresRoundTrips counts what each kind of cart change sends to
// PostgreSQL: one statement in one round trip in the common case (the
// replica's last sight of the cart is current), two when another replica
// changed the cart since, and the locking path's two round trips and six
// statements for comparison.
func TestPostgresRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, w := countedPostgres(t, 1)                            // one connection: its statements are prepared once
	other := &postgresDB{pool: db.pool, seen: newSeenCarts()} // another replica: its own sight of carts
	mutate := func(t *testing.T, s *postgresDB, owner, id string, op cart.Op) cart.Cart {
		t.Helper()
		req := cart.Request{ID: id}
		if id != "" {
			req.Hash = op.Hash()
		}
		c, err := s.MutateCart(ctx, owner, req, change(op))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Prepare every statement on the connection.
	mutate(t, db, "warm", "", addOne("p"))
	mutate(t, db, "warm", "w1", addOne("p"))
	mutate(t, other, "warm", "w2", addOne("p"))
	mutate(t, db, "warm", "w3", cart.Op{Kind: cart.Add, ProductID: "p", Quantity: 1, HasExpected: true, ExpectedVersion: 3})
	if _, err := db.mutateLocked(ctx, "warm", cart.Request{ID: "w4", Hash: addOne("p").Hash()}, change(addOne("p"))); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name                     string
		before                   func(t *testing.T) // not counted
		run                      func(t *testing.T) cart.Cart
		wantVersion, wantQ       int64
		wantTrips, wantStatement int64
	}{
		{"first change of a new cart", nil, func(t *testing.T) cart.Cart {
			return mutate(t, db, "a", "a1", addOne("p"))
		}, 1, 1, 1, 1},
		{"next change, with a request id", nil, func(t *testing.T) cart.Cart {
			return mutate(t, db, "a", "a2", addOne("p"))
		}, 2, 2, 1, 1},
		{"next change, no request id", nil, func(t *testing.T) cart.Cart {
			return mutate(t, db, "a", "", addOne("p"))
		}, 3, 3, 1, 1},
		{"matching expected version", nil, func(t *testing.T) cart.Cart {
			return mutate(t, db, "a", "a4", cart.Op{Kind: cart.Add, ProductID: "p", Quantity: 1, HasExpected: true, ExpectedVersion: 3})
		}, 4, 4, 1, 1},
		{"retry of a recorded request", nil, func(t *testing.T) cart.Cart {
			return mutate(t, db, "a", "a2", addOne("p"))
		}, 2, 2, 1, 1},
		{"after a change by another replica", func(t *testing.T) { mutate(t, other, "a", "b1", addOne("p")) }, func(t *testing.T) cart.Cart {
			return mutate(t, db, "a", "a5", addOne("p"))
		}, 6, 6, 2, 2},
		{"the locking path", nil, func(t *testing.T) cart.Cart {
			c, err := db.mutateLocked(ctx, "a", cart.Request{ID: "a6", Hash: addOne("p").Hash()}, change(addOne("p")))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, 7, 7, 2, 6},
	}
	for _, tt := range tests {
		if tt.before != nil {
			tt.before(t)
		}
		trips, statements := w.counts()
		c := tt.run(t)
		t2, s2 := w.counts()
		if got := fmt.Sprint(c.Version, len(c.Lines), c.Lines[0].Quantity); got != fmt.Sprint(tt.wantVersion, 1, tt.wantQ) {
			t.Errorf("%s: cart %+v, want version %d with %d of p", tt.name, c, tt.wantVersion, tt.wantQ)
		}
		if t2-trips != tt.wantTrips || s2-statements != tt.wantStatement {
			t.Errorf("%s: %d round trips, %d statements; want %d, %d", tt.name, t2-trips, s2-statements, tt.wantTrips, tt.wantStatement)
		}
	}
}
