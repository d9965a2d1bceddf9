package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/catalogsvc/store"
)

// Model fuzzing: any sequence of cart operations, decoded from the fuzz
// input, applied to the SQLite store and to the request-carried cart
// (cartstate), gives the same outcome at every step (error kind, version,
// lines) as a small in-memory model written from the specification
// (versions, expected_version, idempotency keys, limits) without cart.Apply
// or cart.Decide.

// The model's catalog: modelKnown products the catalog has, and a few more
// ids that are valid but unknown.
const (
	modelKnown    = cart.MaxLines + 2
	modelProducts = modelKnown + 4
	// modelMaxOps bounds the operations of one input.
	modelMaxOps = 256
	// modelOpSize is the bytes one operation is decoded from.
	modelOpSize = 4
)

type modelCatalog struct{}

func (modelCatalog) Has(id string) bool {
	var n int
	_, err := fmt.Sscanf(id, "p%03d", &n)
	return err == nil && n < modelKnown && id == modelID(n)
}

func modelID(n int) string { return fmt.Sprintf("p%03d", n) }

// modelOp is one decoded operation. Its expected version, if any, is
// relative to the cart's version when it is applied.
type modelOp struct {
	op        cart.Op
	requestID string
	expDelta  int64
}

// at returns o's operation against a cart at version v.
func (o modelOp) at(v int64) modelOp {
	if o.op.HasExpected {
		o.op.ExpectedVersion = max(v+o.expDelta, 0)
	}
	return o
}

// decodeOps turns fuzz bytes into operations, modelOpSize bytes each:
//
//	b0: kind (low 2 bits), has request id (bit 2), has expected version
//	    (bit 3), request id number (high 4 bits: a few ids, so they repeat)
//	b1: product number
//	b2: quantity (Add 1..999, Set 0..999, scaled; small values as is)
//	b3: expected version relative to the model's: -2..+1 (low 2 bits)
func decodeOps(data []byte) []modelOp {
	var ops []modelOp
	for i := 0; i+modelOpSize <= len(data) && len(ops) < modelMaxOps; i += modelOpSize {
		b0, b1, b2, b3 := data[i], data[i+1], data[i+2], data[i+3]
		o := modelOp{op: cart.Op{Kind: cart.Kind(b0&3) + cart.Add}}
		q := int64(b2)
		if q >= 200 {
			q = 200 + (q-200)*(cart.MaxQuantity-200)/55 // 200..999
		}
		switch o.op.Kind {
		case cart.Add:
			o.op.ProductID, o.op.Quantity = modelID(int(b1)%modelProducts), max(q, 1)
		case cart.Set:
			o.op.ProductID, o.op.Quantity = modelID(int(b1)%modelProducts), q
		case cart.Remove:
			o.op.ProductID = modelID(int(b1) % modelProducts)
		}
		if b0&4 != 0 {
			o.requestID = fmt.Sprintf("r%d", b0>>4)
		}
		if b0&8 != 0 {
			o.op.HasExpected, o.expDelta = true, int64(b3&3)-2
		}
		ops = append(ops, o)
	}
	return ops
}

// model is the specification of a cart with idempotency keys. window > 0
// keeps only that many most recent keys (the request-carried cart);
// 0 keeps them all (the store, within its retention).
type model struct {
	version int64
	lines   []cart.Line
	keys    map[string]modelKey
	order   []string // keys, oldest first
	window  int
}

type modelKey struct {
	op      cart.Op
	version int64
	lines   []cart.Line
}

func newModel(window int) *model { return &model{keys: map[string]modelKey{}, window: window} }

// apply returns the cart after o (or the recorded result of its request
// id) and the error it must fail with: one of cart's sentinels.
func (m *model) apply(o modelOp) (int64, []cart.Line, error) {
	if k, ok := m.keys[o.requestID]; ok && o.requestID != "" {
		if k.op != o.op {
			return 0, nil, cart.ErrRequestReused
		}
		return k.version, k.lines, nil
	}
	if o.op.HasExpected && o.op.ExpectedVersion != m.version {
		return 0, nil, cart.ErrVersionMismatch
	}
	at := -1
	for i, l := range m.lines {
		if l.ProductID == o.op.ProductID {
			at = i
		}
	}
	lines := slices.Clone(m.lines)
	known := modelCatalog{}.Has(o.op.ProductID)
	switch o.op.Kind {
	case cart.Add:
		switch {
		case !known:
			return 0, nil, cart.ErrUnknownProduct
		case at >= 0 && lines[at].Quantity+o.op.Quantity > cart.MaxQuantity:
			return 0, nil, cart.ErrLimit
		case at >= 0:
			lines[at].Quantity += o.op.Quantity
		case len(lines) == cart.MaxLines:
			return 0, nil, cart.ErrLimit
		default:
			lines = append(lines, cart.Line{ProductID: o.op.ProductID, Quantity: o.op.Quantity})
		}
	case cart.Set:
		switch {
		case o.op.Quantity == 0 && at >= 0:
			lines = append(lines[:at], lines[at+1:]...)
		case o.op.Quantity == 0:
		case !known:
			return 0, nil, cart.ErrUnknownProduct
		case at >= 0:
			lines[at].Quantity = o.op.Quantity
		case len(lines) == cart.MaxLines:
			return 0, nil, cart.ErrLimit
		default:
			lines = append(lines, cart.Line{ProductID: o.op.ProductID, Quantity: o.op.Quantity})
		}
	case cart.Remove:
		if at >= 0 {
			lines = append(lines[:at], lines[at+1:]...)
		}
	case cart.Clear:
		lines = nil
	}
	if !slices.Equal(lines, m.lines) {
		m.version++
		m.lines = lines
	}
	if o.requestID != "" {
		m.keys[o.requestID] = modelKey{op: o.op, version: m.version, lines: slices.Clone(m.lines)}
		m.order = append(m.order, o.requestID)
		if m.window > 0 && len(m.order) > m.window {
			delete(m.keys, m.order[0])
			m.order = m.order[1:]
		}
	}
	return m.version, m.lines, nil
}

// FuzzCartModel: the SQLite store and the request-carried cart agree with
// the model on every step of any operation sequence.
func FuzzCartModel(f *testing.F) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(f.TempDir(), "model.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	sealer, err := cartstate.New(bytes.Repeat([]byte{9}, cartstate.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	rc := cartstate.NewCarts(sealer, cartstate.Binary)
	var inputs atomic.Int64
	now := time.Now()

	f.Fuzz(func(t *testing.T, data []byte) {
		owner := fmt.Sprintf("fuzz-%d-%d", now.UnixNano(), inputs.Add(1))
		storeModel, reqModel := newModel(0), newModel(cartstate.MaxRequests)
		var state []byte
		step := 0
		check := func(where string, o modelOp, m *model, gotCart cart.Cart, gotErr error) {
			t.Helper()
			wantV, wantLines, wantErr := m.apply(o)
			if !errors.Is(gotErr, wantErr) {
				t.Fatalf("step %d %s %+v: error %v, want %v", step, where, o, gotErr, wantErr)
			}
			if gotErr == nil && (gotCart.Version != wantV || !equalLines(gotCart.Lines, wantLines)) {
				t.Fatalf("step %d %s %+v: cart v%d %v, want v%d %v", step, where, o, gotCart.Version, gotCart.Lines, wantV, wantLines)
			}
		}
		for _, o := range decodeOps(data) {
			step++
			so := o.at(storeModel.version)
			req := cart.Request{ID: so.requestID}
			if so.requestID != "" {
				req.Hash = so.op.Hash()
			}
			apply := func(cur cart.Cart) (cart.Cart, bool, error) { return cart.Apply(cur, so.op, modelCatalog{}, now) }
			got, err := db.MutateCart(ctx, owner, req, apply)
			check("store", so, storeModel, got, err)

			ro := o.at(reqModel.version)
			req = cart.Request{ID: ro.requestID}
			if ro.requestID != "" {
				req.Hash = ro.op.Hash()
			}
			rapply := func(cur cart.Cart) (cart.Cart, bool, error) { return cart.Apply(cur, ro.op, modelCatalog{}, now) }
			gotR, newState, err := rc.Mutate(ctx, owner, state, req, rapply)
			check("request", ro, reqModel, gotR, err)
			if err == nil {
				state = newState
			}
		}
		got, err := db.Cart(ctx, owner)
		if err != nil || got.Version != storeModel.version || !equalLines(got.Lines, storeModel.lines) {
			t.Fatalf("store reads v%d %v (%v), want v%d %v", got.Version, got.Lines, err, storeModel.version, storeModel.lines)
		}
		gotR, _, err := rc.Get(ctx, owner, state)
		if err != nil || gotR.Version != reqModel.version || !equalLines(gotR.Lines, reqModel.lines) {
			t.Fatalf("cart_state reads v%d %v (%v), want v%d %v", gotR.Version, gotR.Lines, err, reqModel.version, reqModel.lines)
		}
	})
}

func equalLines(a, b []cart.Line) bool {
	return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b))
}
