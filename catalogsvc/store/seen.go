package store

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// Bounds of seenCarts: at most seenSlots carts, each of at most
// seenMaxLines lines (of ids up to cart.MaxProductIDLen bytes) and an owner
// of at most seenMaxOwner bytes: under 16 MiB in the worst case, a few
// hundred bytes per slot for a typical cart.
const (
	seenSlots    = 1 << 12
	seenMaxLines = 32
	seenMaxOwner = 256
)

// seenCarts remembers, for a bounded number of owners, the cart this
// replica last read or wrote: the guess a change is computed from before
// the database confirms, in the same statement that writes it, that the
// cart is still that one. A wrong or missing guess costs a round trip, never
// a wrong answer, so the table is direct-mapped: an owner has one slot,
// which a newer owner hashing to it simply takes over.
type seenCarts struct {
	seed  maphash.Seed
	slots [seenSlots]seenSlot
}

type seenSlot struct {
	mu    sync.Mutex // guards owner and cart
	owner string
	cart  cart.Cart
}

func newSeenCarts() *seenCarts { return &seenCarts{seed: maphash.MakeSeed()} }

func (s *seenCarts) slot(owner string) *seenSlot {
	return &s.slots[maphash.String(s.seed, owner)%seenSlots]
}

// get returns the cart last seen for owner, if remembered. Its Lines must
// not be modified (cart.Apply does not).
func (s *seenCarts) get(owner string) (cart.Cart, bool) {
	sl := s.slot(owner)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.owner != owner {
		return cart.Cart{}, false
	}
	return sl.cart, true
}

// put remembers c as owner's cart, unless too large to keep. Calls that
// finish out of order may leave an older cart than the newest seen: that
// guess costs a round trip, and the next answer replaces it.
func (s *seenCarts) put(owner string, c cart.Cart) {
	if len(owner) > seenMaxOwner || len(c.Lines) > seenMaxLines {
		s.forget(owner)
		return
	}
	sl := s.slot(owner)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	c.Lines = slices.Clip(c.Lines) // an append by the caller copies
	sl.owner, sl.cart = owner, c
}

// forget drops owner's cart, if remembered.
func (s *seenCarts) forget(owner string) {
	sl := s.slot(owner)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.owner == owner {
		sl.owner, sl.cart = "", cart.Cart{}
	}
}
