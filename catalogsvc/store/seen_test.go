package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

func TestSeenCartsBounds(t *testing.T) {
	t.Parallel()
	lines := func(n int) []cart.Line {
		l := make([]cart.Line, n)
		for i := range l {
			l[i] = cart.Line{ProductID: fmt.Sprint("p", i), Quantity: 1}
		}
		return l
	}
	tests := []struct {
		name     string
		owner    string
		cart     cart.Cart
		wantKept bool
	}{
		{"a small cart", "alice", cart.Cart{Version: 3, Lines: lines(2)}, true},
		{"the most lines kept", "bob", cart.Cart{Version: 1, Lines: lines(seenMaxLines)}, true},
		{"more lines", "carol", cart.Cart{Version: 1, Lines: lines(seenMaxLines + 1)}, false},
		{"a long owner", strings.Repeat("o", seenMaxOwner+1), cart.Cart{Version: 1, Lines: lines(1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeenCarts()
			s.put(tt.owner, tt.cart)
			got, ok := s.get(tt.owner)
			if ok != tt.wantKept || (ok && (got.Version != tt.cart.Version || len(got.Lines) != len(tt.cart.Lines))) {
				t.Errorf("get = %+v, %v; want kept %v", got, ok, tt.wantKept)
			}
		})
	}

	// An owner grown past the bound is forgotten, not left at an old cart.
	s := newSeenCarts()
	s.put("dave", cart.Cart{Version: 1, Lines: lines(1)})
	s.put("dave", cart.Cart{Version: 2, Lines: lines(seenMaxLines + 1)})
	if c, ok := s.get("dave"); ok {
		t.Errorf("a cart past the bound left %+v", c)
	}

	// However many owners pass, the table holds at most seenSlots.
	for i := range 4 * seenSlots {
		s.put(fmt.Sprint("owner-", i), cart.Cart{Version: 1})
	}
	kept := 0
	for i := range 4 * seenSlots {
		if _, ok := s.get(fmt.Sprint("owner-", i)); ok {
			kept++
		}
	}
	if kept > seenSlots || kept < seenSlots/2 {
		t.Errorf("%d owners remembered of %d, with %d slots", kept, 4*seenSlots, seenSlots)
	}
}
