package cart_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

type catalog map[string]bool

func (c catalog) Has(id string) bool { return c[id] }

func TestApply(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	cat := catalog{"a": true, "b": true, "c": true}
	two := cart.Cart{Version: 4, Lines: []cart.Line{{"a", 2}, {"gone", 1}}}
	full := cart.Cart{Version: 1}
	for i := range cart.MaxLines {
		id := fmt.Sprintf("p%d", i)
		cat[id] = true
		full.Lines = append(full.Lines, cart.Line{ProductID: id, Quantity: 1})
	}
	tests := []struct {
		name        string
		in          cart.Cart
		op          cart.Op
		wantLines   []cart.Line
		wantChanged bool
		wantErr     error
	}{
		{"add new line", two, cart.Op{Kind: cart.Add, ProductID: "b", Quantity: 3}, []cart.Line{{"a", 2}, {"gone", 1}, {"b", 3}}, true, nil},
		{"add to line keeps order", two, cart.Op{Kind: cart.Add, ProductID: "a", Quantity: 997}, []cart.Line{{"a", 999}, {"gone", 1}}, true, nil},
		{"add past 999", two, cart.Op{Kind: cart.Add, ProductID: "a", Quantity: 998}, nil, false, cart.ErrLimit},
		{"add unknown", two, cart.Op{Kind: cart.Add, ProductID: "zzz", Quantity: 1}, nil, false, cart.ErrUnknownProduct},
		{"add deleted product", two, cart.Op{Kind: cart.Add, ProductID: "gone", Quantity: 1}, nil, false, cart.ErrUnknownProduct},
		{"add 101st line", full, cart.Op{Kind: cart.Add, ProductID: "a", Quantity: 1}, nil, false, cart.ErrLimit},
		{"add to a line of a full cart", full, cart.Op{Kind: cart.Add, ProductID: "p7", Quantity: 1}, nil, true, nil},
		{"set", two, cart.Op{Kind: cart.Set, ProductID: "a", Quantity: 5}, []cart.Line{{"a", 5}, {"gone", 1}}, true, nil},
		{"set same", two, cart.Op{Kind: cart.Set, ProductID: "a", Quantity: 2}, nil, false, nil},
		{"set new line", two, cart.Op{Kind: cart.Set, ProductID: "c", Quantity: 1}, []cart.Line{{"a", 2}, {"gone", 1}, {"c", 1}}, true, nil},
		{"set 0 removes", two, cart.Op{Kind: cart.Set, ProductID: "a"}, []cart.Line{{"gone", 1}}, true, nil},
		{"set 0 removes a deleted product", two, cart.Op{Kind: cart.Set, ProductID: "gone"}, []cart.Line{{"a", 2}}, true, nil},
		{"set 0 absent", two, cart.Op{Kind: cart.Set, ProductID: "b"}, nil, false, nil},
		{"set deleted product", two, cart.Op{Kind: cart.Set, ProductID: "gone", Quantity: 3}, nil, false, cart.ErrUnknownProduct},
		{"set 101st line", full, cart.Op{Kind: cart.Set, ProductID: "a", Quantity: 1}, nil, false, cart.ErrLimit},
		{"remove", two, cart.Op{Kind: cart.Remove, ProductID: "gone"}, []cart.Line{{"a", 2}}, true, nil},
		{"remove absent", two, cart.Op{Kind: cart.Remove, ProductID: "b"}, nil, false, nil},
		{"clear", two, cart.Op{Kind: cart.Clear}, nil, true, nil},
		{"clear empty", cart.Cart{}, cart.Op{Kind: cart.Clear}, nil, false, nil},
		{"expected version ok", two, cart.Op{Kind: cart.Remove, ProductID: "a", HasExpected: true, ExpectedVersion: 4}, []cart.Line{{"gone", 1}}, true, nil},
		{"expected version stale", two, cart.Op{Kind: cart.Remove, ProductID: "a", HasExpected: true, ExpectedVersion: 3}, nil, false, cart.ErrVersionMismatch},
		{"expected 0 on a new cart", cart.Cart{}, cart.Op{Kind: cart.Add, ProductID: "a", Quantity: 1, HasExpected: true}, []cart.Line{{"a", 1}}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.in.Lines)
			got, changed, err := cart.Apply(tt.in, tt.op, cat, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(tt.in.Lines, before) {
				t.Fatal("Apply modified its input")
			}
			if changed != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if err != nil || !changed {
				if got.Version != tt.in.Version {
					t.Errorf("version moved without a change")
				}
				return
			}
			if got.Version != tt.in.Version+1 || !got.UpdateTime.Equal(now) {
				t.Errorf("version %d time %v, want %d %v", got.Version, got.UpdateTime, tt.in.Version+1, now)
			}
			if tt.wantLines != nil && !slices.Equal(got.Lines, tt.wantLines) {
				t.Errorf("lines = %v, want %v", got.Lines, tt.wantLines)
			}
			if err := cart.CheckLines(got.Lines); err != nil {
				t.Errorf("result breaks the invariants: %v", err)
			}
		})
	}
}

func TestOpHash(t *testing.T) {
	t.Parallel()
	base := cart.Op{Kind: cart.Add, ProductID: "a", Quantity: 1}
	variants := []cart.Op{
		{Kind: cart.Set, ProductID: "a", Quantity: 1},
		{Kind: cart.Add, ProductID: "b", Quantity: 1},
		{Kind: cart.Add, ProductID: "a", Quantity: 2},
		{Kind: cart.Add, ProductID: "a", Quantity: 1, HasExpected: true},
		{Kind: cart.Add, ProductID: "a", Quantity: 1, HasExpected: true, ExpectedVersion: 1},
	}
	if h1, h2 := base.Hash(), base.Hash(); h1 != h2 {
		t.Fatal("hash not deterministic")
	}
	for _, v := range variants {
		if v.Hash() == base.Hash() {
			t.Errorf("%+v hashes like %+v", v, base)
		}
	}
}

func TestLinesCodec(t *testing.T) {
	t.Parallel()
	lines := []cart.Line{{"a", 1}, {"b-2", 999}}
	got, err := cart.DecodeLines(cart.EncodeLines(lines))
	if err != nil || !slices.Equal(got, lines) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if string(cart.EncodeLines(nil)) != "[]" {
		t.Errorf("empty lines encode as %s", cart.EncodeLines(nil))
	}
	for _, bad := range []string{`{`, `[{"p":"A","q":1}]`, `[{"p":"a","q":0}]`, `[{"p":"a","q":1000}]`, `[{"p":"a","q":1},{"p":"a","q":1}]`} {
		if _, err := cart.DecodeLines([]byte(bad)); !errors.Is(err, cart.ErrCorrupt) {
			t.Errorf("DecodeLines(%s) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestValidProductID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"espresso-1kg": true, "a": true, string(make([]byte, 65)): false, "": false,
		"Espresso": false, "a b": false, "x' OR '1'='1": false, "caf\xc3\xa9": false, "\xff": false,
	} {
		if got := cart.ValidProductID(id); got != want {
			t.Errorf("ValidProductID(%q) = %v, want %v", id, got, want)
		}
	}
}
