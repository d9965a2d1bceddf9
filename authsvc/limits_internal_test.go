package authsvc

import (
	"fmt"
	"testing"
	"time"
)

// TestRefusalsBounded: a refusal holds until its window closes, and the
// keys remembered stay bounded however many there are.
func TestRefusalsBounded(t *testing.T) {
	r := newRefusals()
	now := time.Now()
	r.remember("a", now.Add(time.Second), now)
	if wait, ok := r.refused("a", now); !ok || wait != time.Second {
		t.Errorf("refused(a) = %v, %v; want 1s", wait, ok)
	}
	if _, ok := r.refused("a", now.Add(time.Second)); ok {
		t.Error("still refused when its window closed")
	}
	if _, ok := r.refused("b", now); ok {
		t.Error("an unknown key refused")
	}
	for i := range 5 * maxRefusals {
		r.remember(fmt.Sprint("k", i), now.Add(time.Hour), now)
		if len(r.until) > maxRefusals {
			t.Fatalf("%d keys remembered, bound %d", len(r.until), maxRefusals)
		}
	}
}
