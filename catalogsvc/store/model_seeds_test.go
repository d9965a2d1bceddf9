package store_test

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/internal/expect"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the seed files under testdata/fuzz")

// TestWriteFuzzSeeds writes the seeds of FuzzCartModel to testdata/fuzz
// when run with -update-fuzz-seeds,
//
//	go test -run '^TestWriteFuzzSeeds$' ./catalogsvc/store/ -update-fuzz-seeds
//
// and otherwise checks that the files there are up to date.
func TestWriteFuzzSeeds(t *testing.T) {
	files := map[string]string{}
	for name, ops := range modelSeeds() {
		files[filepath.Join("FuzzCartModel", "seed-"+name)] = expect.FuzzSeed(ops)
	}
	expect.FuzzSeeds(t, files, *updateFuzzSeeds)
}

// Operation encoders for FuzzCartModel's seeds (see decodeOps).
const (
	withKey      = 4
	withExpected = 8
)

func opBytes(kind cart.Kind, flags, key byte, product int, quantity byte, expDelta int) []byte {
	return []byte{byte(kind-cart.Add) | flags | key<<4, byte(product), quantity, byte(expDelta + 2)}
}

func modelSeeds() map[string][]byte {
	cat := func(ops ...[]byte) []byte {
		var out []byte
		for _, o := range ops {
			out = append(out, o...)
		}
		return out
	}
	seeds := map[string][]byte{
		"empty": nil,
		"lifecycle": cat(
			opBytes(cart.Add, 0, 0, 1, 2, 0),
			opBytes(cart.Add, withKey, 1, 2, 1, 0),
			opBytes(cart.Add, withKey, 1, 2, 1, 0), // a retry
			opBytes(cart.Set, 0, 0, 1, 5, 0),
			opBytes(cart.Set, 0, 0, 3, 0, 0), // removes nothing
			opBytes(cart.Remove, withKey, 2, 2, 0, 0),
			opBytes(cart.Add, withKey, 1, 2, 1, 0), // replays the first result
			opBytes(cart.Add, withKey, 1, 2, 2, 0), // reuse with other parameters
			opBytes(cart.Clear, 0, 0, 0, 0, 0),
			opBytes(cart.Clear, 0, 0, 0, 0, 0),
		),
		"expected-versions": cat(
			opBytes(cart.Add, withExpected, 0, 1, 1, 0),
			opBytes(cart.Add, withExpected, 0, 1, 1, -1),
			opBytes(cart.Add, withExpected, 0, 1, 1, 1),
			opBytes(cart.Remove, withExpected|withKey, 3, 1, 0, 0),
			opBytes(cart.Remove, withExpected|withKey, 3, 1, 0, 0), // the same key, now with another expected version
		),
		"quantity-limit": cat(
			opBytes(cart.Add, 0, 0, 4, 255, 0),
			opBytes(cart.Add, 0, 0, 4, 1, 0),
			opBytes(cart.Set, 0, 0, 4, 255, 0),
			opBytes(cart.Set, 0, 0, 4, 254, 0),
		),
		"unknown-products": cat(
			opBytes(cart.Add, 0, 0, modelKnown, 1, 0),
			opBytes(cart.Set, withKey, 5, modelProducts-1, 1, 0),
			opBytes(cart.Set, withKey, 5, modelProducts-1, 0, 0),
			opBytes(cart.Remove, 0, 0, modelKnown+1, 0, 0),
		),
	}
	// More keys than a request-carried cart remembers, then the first
	// again with other parameters: the store refuses, the blob has
	// forgotten it.
	var window []byte
	for i := range cartstate.MaxRequests + 2 {
		window = append(window, opBytes(cart.Add, withKey, byte(i), i, 1, 0)...)
	}
	seeds["key-window"] = cat(window, opBytes(cart.Add, withKey, 0, 0, 2, 0), opBytes(cart.Add, withKey, 9, 9, 1, 0))
	// A full cart, then the 101st line.
	var full []byte
	for i := range cart.MaxLines + 1 {
		full = append(full, opBytes(cart.Add, 0, 0, i, 1, 0)...)
	}
	seeds["line-limit"] = cat(full, opBytes(cart.Set, 0, 0, cart.MaxLines+1, 3, 0), opBytes(cart.Set, 0, 0, 0, 0, 0),
		opBytes(cart.Set, 0, 0, cart.MaxLines+1, 3, 0))
	return seeds
}
