package cartstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// MaxRequests is how many recent idempotency keys a request-carried cart
// remembers. A client retries its last few calls, not older ones; the
// bound keeps the blob small (a full cart of 100 long ids is ≈ 8 KiB, and a
// key whose result is the current cart costs ≈ 100 bytes).
const MaxRequests = 8

// ErrInvalidCart: an authentic blob whose content does not decode to a
// valid cart.
var ErrInvalidCart = errors.New("cart state: does not hold a valid cart")

// Carts keeps no cart: it travels in the requests' cart_state, sealed for
// its owner. The same rules hold as in a store: versions, expected_version,
// and idempotency keys (the most recent MaxRequests, inside the blob),
// decided by cart.Decide. A client may send an older blob of its own again
// (that is its own cart, as it was); it can never forge, read or use
// another user's.
type Carts struct {
	sealer *Sealer
	enc    Encoding
}

// NewCarts returns the request-carried carts sealed by sealer, written in
// enc (read in either).
func NewCarts(sealer *Sealer, enc Encoding) Carts { return Carts{sealer: sealer, enc: enc} }

// payload is the sealed content, in an Encoding (encoding.go).
type payload struct {
	Version  int64       `json:"v"`
	Time     int64       `json:"t,omitempty"` // unix microseconds
	Lines    []cart.Line `json:"l,omitempty"`
	Requests []request   `json:"r,omitempty"` // oldest first
}

// request is a remembered idempotency key. Its result is the current cart
// while Version equals the payload's (nothing changed since: no copy is
// kept), and Lines/Time otherwise, filled in when the cart moves on.
type request struct {
	ID      string      `json:"i"`
	Hash    []byte      `json:"h"`
	Version int64       `json:"v"`
	Time    int64       `json:"t,omitempty"`
	Lines   []cart.Line `json:"l,omitempty"`
}

func (p *payload) cart() cart.Cart {
	return cart.Cart{Version: p.Version, Lines: p.Lines, UpdateTime: fromMicros(p.Time)}
}

// record returns the idempotency record of id, or nil.
func (p *payload) record(id string) *cart.Record {
	if id == "" {
		return nil
	}
	i := slices.IndexFunc(p.Requests, func(r request) bool { return r.ID == id })
	if i < 0 {
		return nil
	}
	r := p.Requests[i]
	result := p.cart()
	if r.Version != p.Version {
		result = cart.Cart{Version: r.Version, Lines: r.Lines, UpdateTime: fromMicros(r.Time)}
	}
	return &cart.Record{Hash: r.Hash, Result: result}
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
func (c Carts) open(owner string, state []byte) (payload, bool, error) {
	if len(state) == 0 {
		return payload{}, false, nil
	}
	plain, current, err := c.sealer.Open(owner, state)
	if err != nil {
		return payload{}, false, err
	}
	p, err := unmarshalPayload(plain)
	if err != nil {
		return payload{}, false, fmt.Errorf("%w: %w", ErrInvalidCart, err)
	}
	// Authentic blobs are ours, but check anyway: a bug or a leaked key must
	// not get past the cart's invariants.
	valid := p.Version >= 0 && len(p.Requests) <= MaxRequests && cart.CheckLines(p.Lines) == nil
	for _, r := range p.Requests {
		valid = valid && r.Version >= 0 && r.Version <= p.Version && len(r.Hash) == 32 && cart.CheckLines(r.Lines) == nil
	}
	if !valid {
		return payload{}, false, ErrInvalidCart
	}
	return p, current, nil
}

// seal seals p for owner, forgetting the oldest idempotency keys if that
// is what it takes to stay under the size limit.
func (c Carts) seal(owner string, p payload) ([]byte, error) {
	for {
		plain, err := c.enc.marshal(p)
		if err != nil {
			return nil, err
		}
		blob, err := c.sealer.Seal(owner, plain)
		if errors.Is(err, ErrTooLarge) && len(p.Requests) > 0 {
			p.Requests = p.Requests[1:]
			continue
		}
		return blob, err
	}
}

// Get returns the cart in state and the state to send back: state itself,
// or the cart resealed with the current key.
func (c Carts) Get(_ context.Context, owner string, state []byte) (cart.Cart, []byte, error) {
	p, current, err := c.open(owner, state)
	if err != nil {
		return cart.Cart{}, nil, err
	}
	if current {
		return p.cart(), state, nil
	}
	blob, err := c.seal(owner, p)
	return p.cart(), blob, err
}

// Mutate changes the cart in state as cart.Decide says and returns the
// resulting cart and the state to send back.
func (c Carts) Mutate(_ context.Context, owner string, state []byte, req cart.Request, apply cart.ApplyFunc) (cart.Cart, []byte, error) {
	p, current, err := c.open(owner, state)
	if err != nil {
		return cart.Cart{}, nil, err
	}
	rec := p.record(req.ID)
	out, err := cart.Decide(p.cart(), rec, req, apply)
	if err != nil {
		return cart.Cart{}, nil, err
	}
	if rec != nil && current {
		return out.Result, state, nil // a replay: nothing changes
	}
	if out.WriteCart {
		// Keys whose result is the cart about to change keep a copy of it.
		for i, r := range p.Requests {
			if r.Version == p.Version {
				p.Requests[i].Lines, p.Requests[i].Time = p.Lines, p.Time
			}
		}
		p.Version, p.Lines, p.Time = out.Result.Version, out.Result.Lines, toMicros(out.Result.UpdateTime)
	}
	if out.WriteRecord {
		p.Requests = append(p.Requests, request{ID: req.ID, Hash: req.Hash[:], Version: p.Version})
		if n := len(p.Requests); n > MaxRequests {
			p.Requests = p.Requests[n-MaxRequests:]
		}
	}
	blob, err := c.seal(owner, p)
	return out.Result, blob, err
}
