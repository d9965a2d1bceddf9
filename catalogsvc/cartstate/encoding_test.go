package cartstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

func testPayloads() map[string]payload {
	hash := bytes.Repeat([]byte{0xab}, 32)
	lines := []cart.Line{{ProductID: "espresso-beans-1kg", Quantity: 2}, {ProductID: "moka-pot", Quantity: 1}}
	return map[string]payload{
		"empty":         {},
		"version only":  {Version: 3},
		"lines":         {Version: 12, Time: 1700000000000000, Lines: lines},
		"request, same": {Version: 12, Time: 1700000000000001, Lines: lines, Requests: []request{{ID: "r1", Hash: hash, Version: 12}}},
		"requests with copies": {Version: 14, Time: 1700000000000002, Lines: lines[:1], Requests: []request{
			{ID: "r1", Hash: hash, Version: 12, Time: 1700000000000001, Lines: lines},
			{ID: "r2", Hash: hash, Version: 13, Time: 1700000000000000},
			{ID: "r3", Hash: hash, Version: 14},
		}},
		"large numbers": {Version: 1 << 62, Time: 1<<63 - 1, Lines: []cart.Line{{ProductID: "p", Quantity: 1 << 40}}},
	}
}

// TestEncodingsRoundTrip: each encoding reads back what it wrote, and the
// reader, whatever the setting, reads both.
func TestEncodingsRoundTrip(t *testing.T) {
	for name, p := range testPayloads() {
		for _, enc := range []Encoding{Binary, JSON} {
			t.Run(fmt.Sprintf("%s/%s", name, enc), func(t *testing.T) {
				b, err := enc.marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				if enc == JSON != (len(b) > 0 && b[0] == '{') {
					t.Fatalf("%s payload starts with %q", enc, b[0])
				}
				got, err := unmarshalPayload(b)
				if err != nil {
					t.Fatal(err)
				}
				if !equalPayload(got, p) {
					t.Fatalf("read back %+v, want %+v", got, p)
				}
			})
		}
	}
}

// equalPayload compares payloads (changing their requests' slices), reading nil and empty slices as equal
// (neither encoding keeps the difference).
func equalPayload(a, b payload) bool {
	norm := func(p payload) payload {
		if len(p.Lines) == 0 {
			p.Lines = nil
		}
		if len(p.Requests) == 0 {
			p.Requests = nil
		}
		for i, r := range p.Requests {
			if len(r.Lines) == 0 {
				p.Requests[i].Lines = nil
			}
			if len(r.Hash) == 0 {
				p.Requests[i].Hash = nil
			}
		}
		return p
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestBinaryIsSmaller: the binary payload of a cart with keys is under
// two thirds of the JSON one (0.56 for this one), which is what it saves
// on every call's cart_state.
func TestBinaryIsSmaller(t *testing.T) {
	p := testPayloads()["requests with copies"]
	bin, _ := Binary.marshal(p)
	js, _ := JSON.marshal(p)
	t.Logf("binary %d bytes, JSON %d bytes", len(bin), len(js))
	if 3*len(bin) > 2*len(js) {
		t.Fatalf("binary %d bytes is not under two thirds of JSON's %d", len(bin), len(js))
	}
}

// TestUpgradeFromJSON: a cart_state written by a replica that writes JSON
// (a release before the binary encoding, or --cart-state-encoding=json)
// opens on one that writes binary, keeps its idempotency keys, and comes
// back binary after a change; and the other way round.
func TestUpgradeFromJSON(t *testing.T) {
	ctx := context.Background()
	sealer, err := New(bytes.Repeat([]byte{5}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	anyProduct := catalogFunc(func(string) bool { return true })
	add := func(product string) cart.ApplyFunc {
		return func(c cart.Cart) (cart.Cart, bool, error) {
			return cart.Apply(c, cart.Op{Kind: cart.Add, ProductID: product, Quantity: 1}, anyProduct, time.Now())
		}
	}
	request := func(id, product string) cart.Request {
		return cart.Request{ID: id, Hash: cart.Op{Kind: cart.Add, ProductID: product, Quantity: 1}.Hash()}
	}
	for _, tt := range []struct{ from, to Encoding }{{JSON, Binary}, {Binary, JSON}} {
		t.Run(fmt.Sprintf("%s to %s", tt.from, tt.to), func(t *testing.T) {
			old, next := NewCarts(sealer, tt.from), NewCarts(sealer, tt.to)
			_, state, err := old.Mutate(ctx, "alice", nil, request("a", "p1"), add("p1"))
			if err != nil {
				t.Fatal(err)
			}
			if plain, _, _ := sealer.Open("alice", state); (plain[0] == '{') != (tt.from == JSON) {
				t.Fatalf("the %s replica wrote %q...", tt.from, plain[:1])
			}
			// The same request again on the other replica: a replay.
			replay, state2, err := next.Mutate(ctx, "alice", state, request("a", "p1"), add("p1"))
			if err != nil || replay.Version != 1 || len(replay.Lines) != 1 {
				t.Fatalf("replay on the %s replica: %+v, %v", tt.to, replay, err)
			}
			if !bytes.Equal(state2, state) {
				t.Fatal("a replay changed cart_state")
			}
			c, state3, err := next.Mutate(ctx, "alice", state, request("b", "p2"), add("p2"))
			if err != nil || c.Version != 2 || len(c.Lines) != 2 {
				t.Fatalf("change on the %s replica: %+v, %v", tt.to, c, err)
			}
			if plain, _, _ := sealer.Open("alice", state3); (plain[0] == '{') != (tt.to == JSON) {
				t.Fatalf("the %s replica wrote %q...", tt.to, plain[:1])
			}
			// And back on the first: the keys of both changes are kept.
			for id, product := range map[string]string{"a": "p1", "b": "p2"} {
				got, _, err := old.Mutate(ctx, "alice", state3, request(id, product), add(product))
				if err != nil || got.Version > 2 {
					t.Fatalf("request %s replayed on the %s replica: %+v, %v", id, tt.from, got, err)
				}
			}
		})
	}
}

type catalogFunc func(string) bool

func (f catalogFunc) Has(id string) bool { return f(id) }

// TestBinaryRefusesStrangers: bytes that are not a payload of ours are
// refused, not half-read.
func TestBinaryRefusesStrangers(t *testing.T) {
	good, _ := Binary.marshal(testPayloads()["requests with copies"])
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"unknown field", protowire.AppendVarint(protowire.AppendTag(bytes.Clone(good), 9, protowire.VarintType), 1)},
		{"fixed64 field", protowire.AppendFixed64(protowire.AppendTag(nil, fieldVersion, protowire.Fixed64Type), 1)},
		{"version as bytes", protowire.AppendBytes(protowire.AppendTag(nil, fieldVersion, protowire.BytesType), []byte("x"))},
		{"truncated", good[:len(good)-3]},
		{"bad line", protowire.AppendBytes(protowire.AppendTag(nil, fieldLines, protowire.BytesType), []byte{0xff})},
		{"group", protowire.AppendTag(nil, fieldLines, protowire.StartGroupType)},
		{"bad json", []byte(`{"v":`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := unmarshalPayload(tt.b); err == nil {
				t.Fatalf("read as %+v", p)
			}
		})
	}
	if _, err := unmarshalPayload(good[:len(good)-3]); !errors.Is(err, errEncoding) {
		t.Fatalf("truncated: %v, want errEncoding", err)
	}
}

// FuzzUnmarshalPayload: any bytes decode or fail without panicking, and
// whatever decodes encodes to bytes that decode to the same payload.
func FuzzUnmarshalPayload(f *testing.F) {
	for _, p := range testPayloads() {
		b, _ := Binary.marshal(p)
		f.Add(b)
		j, _ := JSON.marshal(p)
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := unmarshalPayload(b)
		if err != nil {
			return
		}
		again, err := unmarshalPayload(appendPayload(nil, p))
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if !equalPayload(again, p) {
			t.Fatalf("re-encoded %+v as %+v", p, again)
		}
	})
}

// BenchmarkCartsGet: opening a cart_state with two lines and one key, per
// encoding (go test -bench CartsGet -benchmem ./catalogsvc/cartstate).
func BenchmarkCartsGet(b *testing.B) {
	sealer, err := New(bytes.Repeat([]byte{5}, KeySize))
	if err != nil {
		b.Fatal(err)
	}
	p := testPayloads()["request, same"]
	p.Time = time.Now().UnixMicro()
	for _, enc := range []Encoding{JSON, Binary} {
		b.Run(strings.ToUpper(enc.String()), func(b *testing.B) {
			c := NewCarts(sealer, enc)
			plain, _ := enc.marshal(p)
			state, err := sealer.Seal("user-123", plain)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(state)), "state-bytes")
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.Get(context.Background(), "user-123", state); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
