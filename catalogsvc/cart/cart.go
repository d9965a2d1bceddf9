// Package cart is the shopping cart's model: lines of product ids and
// quantities, a version, and the operations that change them with their
// limits. It knows nothing of prices (those come from the catalog when a
// cart is read), storage or gRPC; the stores and the request-carried mode
// all apply changes through Apply, so the rules are the same everywhere.
package cart

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Limits of a cart.
const (
	// MaxQuantity is the largest quantity of one line.
	MaxQuantity = 999
	// MaxLines is the most lines a cart holds.
	MaxLines = 100
	// MaxProductIDLen bounds a product id, in bytes.
	MaxProductIDLen = 64
	// MaxRequestIDLen bounds an idempotency key, in characters.
	MaxRequestIDLen = 128
)

// Errors of Apply, for errors.Is.
var (
	// ErrVersionMismatch: the expected version is not the cart's.
	ErrVersionMismatch = errors.New("cart: version mismatch")
	// ErrUnknownProduct: the product is not in the catalog.
	ErrUnknownProduct = errors.New("cart: unknown product")
	// ErrLimit: the change would break a quantity or line limit.
	ErrLimit = errors.New("cart: limit exceeded")
	// ErrRequestReused: an idempotency key was reused with other parameters.
	ErrRequestReused = errors.New("cart: request id reused with different parameters")
	// ErrCorrupt: stored or carried cart data does not decode to a valid cart.
	ErrCorrupt = errors.New("cart: corrupt cart data")
)

// Line is one product in a cart.
type Line struct {
	ProductID string `json:"p"`
	Quantity  int64  `json:"q"`
}

// Cart is a cart's content. The zero Cart is the empty cart at version 0.
type Cart struct {
	// Version increases by one with every change.
	Version int64
	// Lines in the order they were first added.
	Lines []Line
	// UpdateTime is when the cart last changed (zero if never).
	UpdateTime time.Time
}

// Kind is the kind of an Op.
type Kind uint8

// The operations.
const (
	Add Kind = iota + 1
	Set
	Remove
	Clear
)

// Op is one change to a cart, as a client asked for it.
type Op struct {
	Kind      Kind
	ProductID string // Add, Set, Remove
	Quantity  int64  // Add (1..MaxQuantity), Set (0..MaxQuantity)
	// ExpectedVersion, when HasExpected, must equal the cart's version.
	ExpectedVersion int64
	HasExpected     bool
}

// Hash identifies the op's parameters, for telling a retry (same request
// id, same hash) from a reuse of the id for something else.
func (o Op) Hash() [32]byte {
	h := sha256.New()
	var buf [8]byte
	h.Write([]byte{'c', 'a', 'r', 't', 1, byte(o.Kind)})
	binary.BigEndian.PutUint64(buf[:], uint64(len(o.ProductID)))
	h.Write(buf[:])
	h.Write([]byte(o.ProductID))
	binary.BigEndian.PutUint64(buf[:], uint64(o.Quantity))
	h.Write(buf[:])
	if o.HasExpected {
		binary.BigEndian.PutUint64(buf[:], uint64(o.ExpectedVersion))
		h.Write([]byte{1})
		h.Write(buf[:])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Catalog tells whether a product may be put into a cart.
type Catalog interface {
	Has(productID string) bool
}

// Apply returns c changed by op at time now, and whether anything changed.
// c is not modified. A change increments the version and sets UpdateTime;
// an op that changes nothing (removing an absent line, clearing an empty
// cart, setting a line to its quantity) leaves both alone. Errors wrap
// ErrVersionMismatch, ErrUnknownProduct or ErrLimit.
func Apply(c Cart, op Op, catalog Catalog, now time.Time) (Cart, bool, error) {
	if op.HasExpected && op.ExpectedVersion != c.Version {
		return c, false, fmt.Errorf("%w: cart is at version %d, not %d", ErrVersionMismatch, c.Version, op.ExpectedVersion)
	}
	i := slices.IndexFunc(c.Lines, func(l Line) bool { return l.ProductID == op.ProductID })
	lines := c.Lines
	switch op.Kind {
	case Add:
		if !catalog.Has(op.ProductID) {
			return c, false, ErrUnknownProduct
		}
		if i >= 0 {
			q := lines[i].Quantity + op.Quantity
			if q > MaxQuantity {
				return c, false, fmt.Errorf("%w: the line would hold %d, more than %d", ErrLimit, q, MaxQuantity)
			}
			lines = slices.Clone(lines)
			lines[i].Quantity = q
		} else {
			if len(lines) >= MaxLines {
				return c, false, fmt.Errorf("%w: the cart already has %d lines", ErrLimit, MaxLines)
			}
			lines = append(slices.Clip(lines), Line{ProductID: op.ProductID, Quantity: op.Quantity})
		}
	case Set:
		switch {
		case op.Quantity == 0 && i < 0:
			return c, false, nil
		case op.Quantity == 0:
			lines = slices.Delete(slices.Clone(lines), i, i+1)
		case !catalog.Has(op.ProductID):
			return c, false, ErrUnknownProduct
		case i >= 0 && lines[i].Quantity == op.Quantity:
			return c, false, nil
		case i >= 0:
			lines = slices.Clone(lines)
			lines[i].Quantity = op.Quantity
		case len(lines) >= MaxLines:
			return c, false, fmt.Errorf("%w: the cart already has %d lines", ErrLimit, MaxLines)
		default:
			lines = append(slices.Clip(lines), Line{ProductID: op.ProductID, Quantity: op.Quantity})
		}
	case Remove:
		if i < 0 {
			return c, false, nil
		}
		lines = slices.Delete(slices.Clone(lines), i, i+1)
	case Clear:
		if len(lines) == 0 {
			return c, false, nil
		}
		lines = nil
	default:
		return c, false, fmt.Errorf("cart: unknown op kind %d", op.Kind)
	}
	return Cart{Version: c.Version + 1, Lines: lines, UpdateTime: now}, true, nil
}

// ValidProductID reports whether id is 1 to MaxProductIDLen characters of
// [a-z0-9-].
func ValidProductID(id string) bool {
	if id == "" || len(id) > MaxProductIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// EncodeLines returns lines in the compact JSON form the stores and the
// request-carried state keep.
func EncodeLines(lines []Line) []byte {
	if lines == nil {
		lines = []Line{}
	}
	b, err := json.Marshal(lines)
	if err != nil {
		panic(err) // a []Line always marshals
	}
	return b
}

// DecodeLines parses EncodeLines' output and checks it describes a valid
// cart, returning ErrCorrupt otherwise.
func DecodeLines(b []byte) ([]Line, error) {
	var lines []Line
	if err := json.Unmarshal(b, &lines); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := CheckLines(lines); err != nil {
		return nil, err
	}
	return lines, nil
}

// CheckLines returns ErrCorrupt unless lines respect every limit: at most
// MaxLines, valid distinct product ids, quantities 1 to MaxQuantity.
func CheckLines(lines []Line) error {
	if len(lines) > MaxLines {
		return fmt.Errorf("%w: %d lines", ErrCorrupt, len(lines))
	}
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		if !ValidProductID(l.ProductID) || l.Quantity < 1 || l.Quantity > MaxQuantity || seen[l.ProductID] {
			return fmt.Errorf("%w: bad line %q x %d", ErrCorrupt, l.ProductID, l.Quantity)
		}
		seen[l.ProductID] = true
	}
	return nil
}
