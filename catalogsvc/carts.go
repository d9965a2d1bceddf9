package catalogsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/internal/cartstate"
)

// cartBackend is where carts live: the database (storeCarts) or the
// requests themselves (requestCarts). state is the request's cart_state and
// the returned []byte the response's (nil in store mode).
type cartBackend interface {
	get(ctx context.Context, owner string, state []byte) (cart.Cart, []byte, error)
	mutate(ctx context.Context, owner string, state []byte, req store.Request, apply store.ApplyFunc) (cart.Cart, []byte, error)
}

// storeCarts keeps carts in the database; cart_state is ignored.
type storeCarts struct{ db database }

func (b storeCarts) get(ctx context.Context, owner string, _ []byte) (cart.Cart, []byte, error) {
	c, err := b.db.Cart(ctx, owner)
	return c, nil, err
}

func (b storeCarts) mutate(ctx context.Context, owner string, _ []byte, req store.Request, apply store.ApplyFunc) (cart.Cart, []byte, error) {
	c, err := b.db.MutateCart(ctx, owner, req, apply)
	return c, nil, err
}

// maxStateRequests is how many recent idempotency keys a request-carried
// cart remembers. A client retries its last few calls, not older ones;
// the bound keeps the blob small (a full cart of 100 long ids is ≈ 8 KiB,
// and a key whose result is the current cart costs ≈ 100 bytes).
const maxStateRequests = 8

// requestCarts keeps no cart: it travels in cart_state, sealed for its
// owner by cartstate. The same rules hold as in the store: versions,
// expected_version, and idempotency keys (the most recent ones, inside the
// blob). A client may send an older blob of its own again (that is its own
// cart, as it was); it can never forge, read or use another user's.
type requestCarts struct{ sealer *cartstate.Sealer }

// statePayload is the sealed content, as compact JSON.
type statePayload struct {
	Version  int64          `json:"v"`
	Time     int64          `json:"t,omitempty"` // unix microseconds
	Lines    []cart.Line    `json:"l,omitempty"`
	Requests []stateRequest `json:"r,omitempty"` // oldest first
}

// stateRequest is a remembered idempotency key. Its result is the current
// cart while Version equals the payload's (nothing changed since: no copy
// is kept), and Lines/Time otherwise, filled in when the cart moves on.
type stateRequest struct {
	ID      string      `json:"i"`
	Hash    []byte      `json:"h"`
	Version int64       `json:"v"`
	Time    int64       `json:"t,omitempty"`
	Lines   []cart.Line `json:"l,omitempty"`
}

func (p *statePayload) cart() cart.Cart {
	return cart.Cart{Version: p.Version, Lines: p.Lines, UpdateTime: fromMicros(p.Time)}
}

func (p *statePayload) result(r stateRequest) cart.Cart {
	if r.Version == p.Version {
		return p.cart()
	}
	return cart.Cart{Version: r.Version, Lines: r.Lines, UpdateTime: fromMicros(r.Time)}
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// open returns the cart in state (the empty cart for an empty state) and
// whether state is sealed with the current key, so can be sent back as is.
func (b requestCarts) open(owner string, state []byte) (statePayload, bool, error) {
	if len(state) == 0 {
		return statePayload{}, false, nil
	}
	plain, current, err := b.sealer.Open(owner, state)
	if err != nil {
		return statePayload{}, false, err
	}
	var p statePayload
	if err := json.Unmarshal(plain, &p); err != nil {
		return statePayload{}, false, fmt.Errorf("%w: %w", errBadCartState, err)
	}
	// Authentic blobs are ours, but check anyway: a bug or a leaked key must
	// not get past the cart's invariants.
	valid := p.Version >= 0 && len(p.Requests) <= maxStateRequests && cart.CheckLines(p.Lines) == nil
	for _, r := range p.Requests {
		valid = valid && r.Version >= 0 && r.Version <= p.Version && len(r.Hash) == 32 && cart.CheckLines(r.Lines) == nil
	}
	if !valid {
		return statePayload{}, false, errBadCartState
	}
	return p, current, nil
}

// seal seals p for owner, forgetting the oldest idempotency keys if that
// is what it takes to stay under the size limit.
func (b requestCarts) seal(owner string, p statePayload) ([]byte, error) {
	for {
		plain, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		blob, err := b.sealer.Seal(owner, plain)
		if errors.Is(err, cartstate.ErrTooLarge) && len(p.Requests) > 0 {
			p.Requests = p.Requests[1:]
			continue
		}
		return blob, err
	}
}

func (b requestCarts) get(_ context.Context, owner string, state []byte) (cart.Cart, []byte, error) {
	p, current, err := b.open(owner, state)
	if err != nil {
		return cart.Cart{}, nil, err
	}
	if current {
		return p.cart(), state, nil
	}
	blob, err := b.seal(owner, p)
	return p.cart(), blob, err
}

func (b requestCarts) mutate(_ context.Context, owner string, state []byte, req store.Request, apply store.ApplyFunc) (cart.Cart, []byte, error) {
	p, current, err := b.open(owner, state)
	if err != nil {
		return cart.Cart{}, nil, err
	}
	if req.ID != "" {
		if i := slices.IndexFunc(p.Requests, func(r stateRequest) bool { return r.ID == req.ID }); i >= 0 {
			if !bytes.Equal(p.Requests[i].Hash, req.Hash[:]) {
				return cart.Cart{}, nil, cart.ErrRequestReused
			}
			if current {
				return p.result(p.Requests[i]), state, nil
			}
			blob, err := b.seal(owner, p)
			return p.result(p.Requests[i]), blob, err
		}
	}
	next, changed, err := apply(p.cart())
	if err != nil {
		return cart.Cart{}, nil, err
	}
	next.UpdateTime = fromMicros(toMicros(next.UpdateTime))
	if changed {
		// Keys whose result is the cart about to change keep a copy of it.
		for i, r := range p.Requests {
			if r.Version == p.Version {
				p.Requests[i].Lines, p.Requests[i].Time = p.Lines, p.Time
			}
		}
		p.Version, p.Lines, p.Time = next.Version, next.Lines, toMicros(next.UpdateTime)
	}
	if req.ID != "" {
		p.Requests = append(p.Requests, stateRequest{ID: req.ID, Hash: req.Hash[:], Version: p.Version})
		if n := len(p.Requests); n > maxStateRequests {
			p.Requests = p.Requests[n-maxStateRequests:]
		}
	}
	blob, err := b.seal(owner, p)
	return next, blob, err
}
