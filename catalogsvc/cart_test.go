package catalogsvc_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/testing/protocmp"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// Products of the seed catalog the tests use.
const (
	espresso = "espresso-blend-1kg"        // 24.90
	kenya    = "kenya-aa-250g"             // 14.50
	biscotti = "almond-biscotti-200g"      // 5.90
	sencha   = "sencha-organic-100g"       // 9.50
	press    = "french-press-1l"           // 34.90
	dripper  = "pour-over-dripper-ceramic" // 22.00
)

type line struct {
	id string
	q  int64
}

// wantCart builds the cart a client should see, pricing lines from the
// public catalog with arithmetic of its own.
func wantCart(t testing.TB, r *replica, version int64, lines ...line) *catalogv1.Cart {
	t.Helper()
	money := func(n int64) *catalogv1.Money {
		return &catalogv1.Money{CurrencyCode: "EUR", Units: n / 1e9, Nanos: int32(n % 1e9)}
	}
	c := &catalogv1.Cart{Version: version, Lines: []*catalogv1.CartLine{}}
	var sub int64
	for _, l := range lines {
		cl := &catalogv1.CartLine{ProductId: l.id, Quantity: l.q}
		resp, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: l.id})
		if err == nil {
			p := resp.GetProduct()
			total := (p.GetPrice().GetUnits()*1e9 + int64(p.GetPrice().GetNanos())) * l.q
			cl.Name, cl.UnitPrice, cl.LineTotal, cl.Available = p.GetName(), p.GetPrice(), money(total), true
			sub += total
			c.TotalQuantity += l.q
		}
		c.Lines = append(c.Lines, cl)
	}
	c.Subtotal = money(sub)
	return c
}

func diffCart(want, got *catalogv1.Cart) string {
	return cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreFields(&catalogv1.Cart{}, "update_time"))
}

func checkCart(t testing.TB, r *replica, got *catalogv1.Cart, version int64, lines ...line) {
	t.Helper()
	if d := diffCart(wantCart(t, r, version, lines...), got); d != "" {
		t.Fatalf("cart mismatch (-want +got):\n%s", d)
	}
}

// TestCartContract is the cart's contract, run through the gRPC API against
// each of the three modes: SQLite, PostgreSQL and the request-carried cart.
func TestCartContract(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			r := c.start()
			admin := client.WithToken(testContext(t), c.fake.Mint(t, "admin-1", token.RoleAdmin))

			t.Run("lifecycle", func(t *testing.T) {
				s := c.shopper(r, "life")
				checkCart(t, r, s.get().must(t), 0)
				checkCart(t, r, s.add(espresso, 2).must(t), 1, line{espresso, 2})
				checkCart(t, r, s.add(kenya, 1).must(t), 2, line{espresso, 2}, line{kenya, 1})
				checkCart(t, r, s.add(espresso, 3).must(t), 3, line{espresso, 5}, line{kenya, 1})
				checkCart(t, r, s.set(kenya, 4).must(t), 4, line{espresso, 5}, line{kenya, 4})
				checkCart(t, r, s.set(biscotti, 2).must(t), 5, line{espresso, 5}, line{kenya, 4}, line{biscotti, 2})
				checkCart(t, r, s.set(espresso, 0).must(t), 6, line{kenya, 4}, line{biscotti, 2})
				checkCart(t, r, s.remove(kenya).must(t), 7, line{biscotti, 2})
				got := s.get().must(t)
				checkCart(t, r, got, 7, line{biscotti, 2})
				if got.GetUpdateTime() == nil {
					t.Error("changed cart without update_time")
				}
				// Changes that change nothing keep the version.
				checkCart(t, r, s.remove(kenya).must(t), 7, line{biscotti, 2})
				checkCart(t, r, s.set(kenya, 0).must(t), 7, line{biscotti, 2})
				checkCart(t, r, s.set(biscotti, 2).must(t), 7, line{biscotti, 2})
				checkCart(t, r, s.clear().must(t), 8)
				checkCart(t, r, s.clear().must(t), 8)
				checkCart(t, r, s.get().must(t), 8)
			})

			t.Run("invalid requests change nothing", func(t *testing.T) {
				s := c.shopper(r, "hostile")
				s.add(espresso, 1).must(t)
				before := s.state
				long := strings.Repeat("a", 65)
				tests := []struct {
					name string
					call func() error
					want codes.Code
				}{
					{"quantity 0", func() error { return s.add(espresso, 0).err }, codes.InvalidArgument},
					{"quantity -1", func() error { return s.add(espresso, -1).err }, codes.InvalidArgument},
					{"quantity 1000", func() error { return s.add(espresso, 1000).err }, codes.InvalidArgument},
					{"quantity 2^31", func() error { return s.add(espresso, 1<<31).err }, codes.InvalidArgument},
					{"quantity max int64", func() error { return s.add(espresso, math.MaxInt64).err }, codes.InvalidArgument},
					{"set -1", func() error { return s.set(espresso, -1).err }, codes.InvalidArgument},
					{"set 1000", func() error { return s.set(espresso, 1000).err }, codes.InvalidArgument},
					{"empty product id", func() error { return s.add("", 1).err }, codes.InvalidArgument},
					{"65-character product id", func() error { return s.add(long, 1).err }, codes.InvalidArgument},
					{"10 KiB product id", func() error { return s.add(strings.Repeat("a", 10<<10), 1).err }, codes.InvalidArgument},
					{"upper-case product id", func() error { return s.add("ESPRESSO", 1).err }, codes.InvalidArgument},
					{"SQL product id", func() error { return s.add("x' OR '1'='1", 1).err }, codes.InvalidArgument},
					{"unknown product", func() error { return s.add("no-such-product", 1).err }, codes.NotFound},
					{"set unknown product", func() error { return s.set("no-such-product", 1).err }, codes.NotFound},
					{"request id of 129", func() error { return s.add(espresso, 1, withRequestID(strings.Repeat("r", 129))).err }, codes.InvalidArgument},
					{"request id with control characters", func() error { return s.clear(withRequestID("a\x00b")).err }, codes.InvalidArgument},
					{"negative expected version", func() error { return s.clear(expecting(-1)).err }, codes.InvalidArgument},
					{"stale expected version", func() error { return s.add(espresso, 1, expecting(0)).err }, codes.Aborted},
					{"future expected version", func() error { return s.clear(expecting(99)).err }, codes.Aborted},
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						expect.MustCode(t, "", tt.call(), tt.want)
						s.state = before
						checkCart(t, r, s.get().must(t), 1, line{espresso, 1})
					})
				}
				// Strings that are not UTF-8 are refused by gRPC's codec
				// (proto3 strings are UTF-8) with Internal, before any
				// handler: nothing changes.
				for _, field := range []protowire.Number{1, 3} { // product_id, request_id
					raw := protowire.AppendTag(nil, field, protowire.BytesType)
					raw = protowire.AppendString(raw, "caf\xe9")
					raw = protowire.AppendTag(raw, 2, protowire.VarintType)
					raw = protowire.AppendVarint(raw, 1)
					var out []byte
					err := r.conn.Invoke(s.ctx, catalogv1.CartService_AddItem_FullMethodName, raw, &out, grpc.ForceCodec(rawCodec{}))
					if st, _ := status.FromError(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "invalid UTF-8") {
						t.Errorf("field %d not UTF-8: %v, want Internal for invalid UTF-8", field, err)
					}
					s.state = before
					checkCart(t, r, s.get().must(t), 1, line{espresso, 1})
				}
				// A request id of exactly 128 characters (not bytes) is fine.
				s.add(espresso, 1, withRequestID(strings.Repeat("é", 128))).must(t)
			})

			t.Run("limits", func(t *testing.T) {
				s := c.shopper(r, "limits")
				s.add(espresso, 999).must(t)
				err := s.add(espresso, 1).err
				expect.MustCode(t, "", err, codes.FailedPrecondition)
				checkCart(t, r, s.get().must(t), 1, line{espresso, 999})

				ids := ensureProducts(t, r, admin, 101)
				s.clear().must(t)
				want := []line{}
				for _, id := range ids[:100] {
					s.add(id, 1).must(t)
					want = append(want, line{id, 1})
				}
				err = s.add(ids[100], 1).err
				expect.MustCode(t, "", err, codes.FailedPrecondition)
				err = s.set(ids[100], 1).err
				expect.MustCode(t, "", err, codes.FailedPrecondition)
				checkCart(t, r, s.get().must(t), 102, want...)
				s.add(ids[0], 998).must(t) // adding to an existing line of a full cart is fine
			})

			t.Run("expected version", func(t *testing.T) {
				s := c.shopper(r, "versions")
				checkCart(t, r, s.add(espresso, 1, expecting(0)).must(t), 1, line{espresso, 1})
				checkCart(t, r, s.add(espresso, 1, expecting(1)).must(t), 2, line{espresso, 2})
				err := s.remove(espresso, expecting(1)).err
				expect.MustCode(t, "", err, codes.Aborted)
				checkCart(t, r, s.clear(expecting(2)).must(t), 3)
			})

			t.Run("idempotency", func(t *testing.T) {
				s := c.shopper(r, "retries")
				first := s.add(espresso, 2, withRequestID("r1")).must(t)
				stateAfterFirst := s.state
				// A retry (with the state the first call returned, as a client
				// that lost only the response would not have; or in store mode,
				// simply again) returns the first result and changes nothing.
				again := s.add(espresso, 2, withRequestID("r1")).must(t)
				if d := cmp.Diff(first, again, protocmp.Transform()); d != "" {
					t.Errorf("retry result differs (-first +retry):\n%s", d)
				}
				s.add(kenya, 1).must(t)
				replay := s.add(espresso, 2, withRequestID("r1")).must(t)
				if d := cmp.Diff(first, replay, protocmp.Transform()); d != "" {
					t.Errorf("replay after a later change differs from the first result (-first +replay):\n%s", d)
				}
				checkCart(t, r, s.get().must(t), 2, line{espresso, 2}, line{kenya, 1})
				err := s.add(espresso, 3, withRequestID("r1")).err
				expect.MustCode(t, "", err, codes.InvalidArgument)
				err = s.remove(espresso, withRequestID("r1")).err
				expect.MustCode(t, "", err, codes.InvalidArgument)
				// Keys of one user are not another's.
				other := c.shopper(r, "retries-other")
				checkCart(t, r, other.add(kenya, 1, withRequestID("r1")).must(t), 1, line{kenya, 1})
				// A request that failed can be retried with the same key.
				err = s.add(espresso, 999, withRequestID("r2")).err
				expect.MustCode(t, "", err, codes.FailedPrecondition)
				s.remove(kenya).must(t)
				s.set(espresso, 1).must(t)
				checkCart(t, r, s.add(espresso, 998, withRequestID("r2")).must(t), 5, line{espresso, 999})
				if c.cartMode == catalogsvc.CartModeRequest {
					// The client that lost the response retries with the state
					// it had: the same change, computed again, same outcome.
					s.state = stateAfterFirst
					s.add(kenya, 1).must(t)
				}
			})

			t.Run("deleted product", func(t *testing.T) {
				s := c.shopper(r, "deleted")
				ids := ensureProducts(t, r, admin, 1)
				doomed := "doomed-product"
				upsert(t, r, admin, doomed, 7, 0)
				s.add(doomed, 2).must(t)
				s.add(ids[0], 1).must(t)
				if _, err := r.catalog.DeleteProduct(admin, &catalogv1.DeleteProductRequest{ProductId: doomed}); err != nil {
					t.Fatal(err)
				}
				checkCart(t, r, s.get().must(t), 2, line{doomed, 2}, line{ids[0], 1})
				got := s.get().must(t)
				if got.GetLines()[0].GetAvailable() || got.GetTotalQuantity() != 1 {
					t.Errorf("deleted product's line: %v, total quantity %d", got.GetLines()[0], got.GetTotalQuantity())
				}
				err := s.add(doomed, 1).err
				expect.MustCode(t, "", err, codes.NotFound)
				checkCart(t, r, s.remove(doomed).must(t), 3, line{ids[0], 1})
			})

			t.Run("prices are the catalog's at read time", func(t *testing.T) {
				s := c.shopper(r, "prices")
				id := "price-test"
				upsert(t, r, admin, id, 10, 0)
				s.add(id, 3).must(t)
				upsert(t, r, admin, id, 12, 500_000_000)
				got := s.get().must(t)
				if p := got.GetSubtotal(); p.GetUnits() != 37 || p.GetNanos() != 500_000_000 {
					t.Errorf("subtotal %v after the price change, want 37.50", p)
				}
			})

			t.Run("isolation", func(t *testing.T) {
				alice, bob := c.shopper(r, "alice"), c.shopper(r, "bob")
				alice.add(espresso, 3).must(t)
				alice.add(kenya, 1, withRequestID("a-1")).must(t)
				checkCart(t, r, bob.get().must(t), 0)
				bob.add(biscotti, 1).must(t)
				checkCart(t, r, alice.get().must(t), 2, line{espresso, 3}, line{kenya, 1})
				if c.cartMode != catalogsvc.CartModeRequest {
					return
				}
				// Request mode: bob presents alice's state in every call.
				bob.state = alice.state
				for name, call := range map[string]func() error{
					"get":    func() error { return bob.get().err },
					"add":    func() error { return bob.add(espresso, 1).err },
					"set":    func() error { return bob.set(espresso, 1).err },
					"remove": func() error { return bob.remove(espresso).err },
					"clear":  func() error { return bob.clear().err },
					"replay": func() error { return bob.add(kenya, 1, withRequestID("a-1")).err },
				} {
					bob.state = alice.state
					if err := call(); status.Code(err) != codes.PermissionDenied {
						t.Errorf("%s with alice's cart_state: %v, want PermissionDenied", name, err)
					}
				}
				checkCart(t, r, alice.get().must(t), 2, line{espresso, 3}, line{kenya, 1})
			})

			if c.cartMode == catalogsvc.CartModeRequest {
				t.Run("cart_state attacks", func(t *testing.T) {
					s := c.shopper(r, "mallory")
					s.add(espresso, 1).must(t)
					good := bytes.Clone(s.state)
					flipped := bytes.Clone(good)
					flipped[len(flipped)-3] ^= 0x10
					otherKey := newCluster(t, mode{"x", sqliteDSN, catalogsvc.CartModeRequest})
					tests := []struct {
						name  string
						state []byte
						want  codes.Code
					}{
						{"bit flipped", flipped, codes.InvalidArgument},
						{"truncated", good[:len(good)-1], codes.InvalidArgument},
						{"header only", good[:10], codes.InvalidArgument},
						{"garbage", []byte("{\"v\":99,\"l\":[]}"), codes.InvalidArgument},
						{"oversized", append(bytes.Clone(good), make([]byte, cartstate.MaxSize)...), codes.InvalidArgument},
						{"sealed with a key we do not hold", sealedElsewhere(t, otherKey), codes.InvalidArgument},
					}
					for _, tt := range tests {
						t.Run(tt.name, func(t *testing.T) {
							s.state = tt.state
							err := s.add(espresso, 1).err
							expect.MustCode(t, "", err, tt.want)
							s.state = tt.state
							err = s.get().err
							expect.MustCode(t, "", err, tt.want)
						})
					}
					// An old state of one's own is one's own cart, as it was.
					s.state = good
					checkCart(t, r, s.get().must(t), 1, line{espresso, 1})
				})
			}
		})
	}
}

// sealedElsewhere returns a valid cart_state from a replica of another
// cluster, with another cart key.
func sealedElsewhere(t *testing.T, c *cluster) []byte {
	t.Helper()
	r := c.start()
	s := c.shopper(r, "mallory")
	s.add(espresso, 1).must(t)
	return s.state
}

// upsert creates or replaces the product id with a price, as admin.
func upsert(t testing.TB, r *replica, admin context.Context, id string, units int64, nanos int32) {
	t.Helper()
	_, err := r.catalog.UpsertProduct(admin, &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{
		Id: id, Name: "Test product " + id, Description: "made by a test", Category: "test",
		Price: &catalogv1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos},
	}})
	if err != nil {
		t.Fatalf("upsert %s: %v", id, err)
	}
}

// ensureProducts makes sure products bulk-000 ... exist and returns n ids.
func ensureProducts(t testing.TB, r *replica, admin context.Context, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bulk-%03d", i)
		if _, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: ids[i]}); err != nil {
			upsert(t, r, admin, ids[i], 1, 0)
		}
	}
	return ids
}

// TestReplicasShareCarts: a shopper adds through replica A, reads through
// B, changes through C; the cart is right at every step.
func TestReplicasShareCarts(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			a, b, cc := c.start(), c.start(), c.start()
			s := c.shopper(a, "roaming")
			checkCart(t, a, s.via(a).add(espresso, 2).must(t), 1, line{espresso, 2})
			checkCart(t, a, s.via(b).get().must(t), 1, line{espresso, 2})
			checkCart(t, a, s.via(cc).add(press, 1).must(t), 2, line{espresso, 2}, line{press, 1})
			checkCart(t, a, s.via(a).get().must(t), 2, line{espresso, 2}, line{press, 1})
			checkCart(t, a, s.via(b).set(espresso, 5, expecting(2)).must(t), 3, line{espresso, 5}, line{press, 1})
			checkCart(t, a, s.via(cc).remove(press).must(t), 4, line{espresso, 5})
			checkCart(t, a, s.via(a).get().must(t), 4, line{espresso, 5})
		})
	}
}

// TestConcurrentAddsAcrossReplicas: two replicas apply 1,000 concurrent
// AddItem(+1) to one cart; it ends at exactly 1,000 (four products of 250,
// as a line holds at most 999).
func TestConcurrentAddsAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, m := range storeModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			a, b := c.start(), c.start()
			ctx := client.WithToken(testContext(t), c.fake.Mint(t, "busy", token.RoleCustomer))
			products := []string{espresso, kenya, biscotti, sencha}
			const n, workers = 1000, 50
			jobs := make(chan int)
			var wg sync.WaitGroup
			for w := range workers {
				r := []*replica{a, b}[w%2]
				wg.Go(func() {
					for i := range jobs {
						_, err := r.carts.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: products[i%4], Quantity: 1})
						if err != nil {
							t.Errorf("add %d: %v", i, err)
						}
					}
				})
			}
			for i := range n {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			s := c.shopper(b, "busy")
			s.ctx = ctx
			got := s.get().must(t)
			// Lines are in the order first added, which the race decided.
			slices.SortFunc(got.Lines, func(x, y *catalogv1.CartLine) int { return strings.Compare(x.GetProductId(), y.GetProductId()) })
			checkCart(t, a, got, n, line{biscotti, 250}, line{espresso, 250}, line{kenya, 250}, line{sencha, 250})
		})
	}
}

// TestRequestModeChainAcrossReplicas is the request mode's counterpart: a
// client serialises its calls (it needs each response's cart_state for the
// next), so 1,000 AddItem(+1) alternating between two replicas end at
// exactly 1,000, version 1,000; a replica that is sent an outdated state
// with expected_version refuses it.
func TestRequestModeChainAcrossReplicas(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[2])
	a, b := c.start(), c.start()
	s := c.shopper(a, "chain")
	products := []string{espresso, kenya, biscotti, sencha}
	const n = 1000
	var stale []byte
	for i := range n {
		s.via([]*replica{a, b}[i%2]).add(products[i%4], 1, expecting(int64(i))).must(t)
		if i == n/2 {
			stale = s.state
		}
	}
	got := s.get().must(t)
	checkCart(t, a, got, n, line{espresso, 250}, line{kenya, 250}, line{biscotti, 250}, line{sencha, 250})
	s.state = stale
	expect.MustCode(t, "", s.add(espresso, 1, expecting(n)).err, codes.Aborted)
}

// TestSameRequestTwoReplicas: one request_id sent to two replicas (many
// times, at once) is applied once, and every answer is the same.
func TestSameRequestTwoReplicas(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			a, b := c.start(), c.start()
			s := c.shopper(a, "twice")
			s.add(kenya, 1).must(t) // version 1
			state := s.state
			const tries = 20
			results := make([]*catalogv1.Cart, tries)
			states := make([][]byte, tries)
			var wg sync.WaitGroup
			for i := range tries {
				r := []*replica{a, b}[i%2]
				wg.Go(func() {
					resp, err := r.carts.AddItem(s.ctx, &catalogv1.AddItemRequest{
						ProductId: espresso, Quantity: 3, RequestId: "same-id", CartState: state,
					})
					if err != nil {
						t.Errorf("try %d: %v", i, err)
						return
					}
					results[i], states[i] = resp.GetCart(), resp.GetCartState()
				})
			}
			wg.Wait()
			cmpOpts := []cmp.Option{protocmp.Transform()}
			if c.cartMode == catalogsvc.CartModeRequest {
				// No replica stores anything: each computes the same change from
				// the same sealed state, at its own moment.
				cmpOpts = append(cmpOpts, protocmp.IgnoreFields(&catalogv1.Cart{}, "update_time"))
			}
			for i, got := range results {
				if d := cmp.Diff(results[0], got, cmpOpts...); d != "" {
					t.Errorf("answer %d differs from answer 0 (-0 +%d):\n%s", i, i, d)
				}
			}
			checkCart(t, a, results[0], 2, line{kenya, 1}, line{espresso, 3})
			if c.cartMode == catalogsvc.CartModeRequest {
				// The client carries on from any of the answers: the request is
				// recorded in each, so replaying it changes nothing.
				s.state = states[tries-1]
			}
			checkCart(t, a, s.via(b).add(espresso, 3, withRequestID("same-id")).must(t), 2, line{kenya, 1}, line{espresso, 3})
			checkCart(t, a, s.via(a).get().must(t), 2, line{kenya, 1}, line{espresso, 3})
		})
	}
}

// rawCodec sends and receives undecoded protobuf bytes, to put on the wire
// what the generated clients refuse to send.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = data
	return nil
}

func (rawCodec) Name() string { return "proto" }
