package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// The contract tests below run against every backend, through the
// interface its consumer declares: catalogsvc.Store.

// backend opens replicas (independent connections) of one fresh database.
type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }},
	{"postgres", func(t *testing.T) string { return sqldbtest.DSN(t) }},
}

// open opens the store at dsn, closed when t ends.
func open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

func closeStore(t testing.TB, s io.Closer) {
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func forEachBackend(t *testing.T, test func(t *testing.T, replica func(t *testing.T) catalogsvc.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.dsn(t)
			test(t, func(t *testing.T) catalogsvc.Store { return open(t, dsn) })
		})
	}
}

type allProducts struct{}

func (allProducts) Has(string) bool { return true }

func add(id string, q int64) cart.ApplyFunc {
	return func(c cart.Cart) (cart.Cart, bool, error) {
		return cart.Apply(c, cart.Op{Kind: cart.Add, ProductID: id, Quantity: q}, allProducts{}, time.Now())
	}
}

func product(id string) catalogsvc.Product {
	return catalogsvc.Product{ID: id, Name: "Product " + id, Description: "d", Category: "c", Currency: "EUR", Units: 3, Nanos: 500_000_000,
		UpdateTime: time.UnixMicro(time.Now().UnixMicro()).UTC()}
}

func TestSeedOnceUnderConcurrentStarts(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		seed := []catalogsvc.Product{product("a"), product("b"), product("c")}
		const replicas = 4
		stores := make([]catalogsvc.Store, replicas)
		for i := range stores {
			stores[i] = replica(t)
		}
		seeded := make([]bool, replicas)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				ok, err := s.SeedProducts(ctx, seed)
				if err != nil {
					t.Errorf("seed: %v", err)
				}
				seeded[i] = ok
			})
		}
		wg.Wait()
		n := 0
		for _, ok := range seeded {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d replicas seeded, want exactly 1", n)
		}
		got, err := stores[0].Products(ctx)
		if err != nil || len(got) != 3 {
			t.Fatalf("products after seeding: %d, %v", len(got), err)
		}
		// Deleted products stay deleted across restarts.
		if err := stores[0].DeleteProduct(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if ok, err := replica(t).SeedProducts(ctx, seed); ok || err != nil {
			t.Errorf("second seed: %v, %v; want no seeding", ok, err)
		}
		if got, _ := stores[0].Products(ctx); len(got) != 2 {
			t.Errorf("a deleted seed product came back: %d products", len(got))
		}
	})
}

func TestProducts(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		s := replica(t)
		v0, err := s.CatalogVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := product("tea")
		if err := s.UpsertProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Name, p.Units = "Green tea", 9
		if err := s.UpsertProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err := s.Products(ctx)
		if err != nil || len(got) != 1 || got[0] != p {
			t.Fatalf("Products = %+v, %v; want [%+v]", got, err, p)
		}
		if err := s.DeleteProduct(ctx, "nope"); !errors.Is(err, catalogsvc.ErrNotFound) {
			t.Errorf("delete absent: %v, want ErrNotFound", err)
		}
		if err := s.DeleteProduct(ctx, "tea"); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.CatalogVersion(ctx); v != v0+3 {
			t.Errorf("catalog version %d after 3 changes from %d", v, v0)
		}
	})
}

func TestMutateCartConcurrentReplicas(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		a, b := replica(t), replica(t)
		const n = 200
		var wg sync.WaitGroup
		for i := range n {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				if _, err := s.MutateCart(ctx, "owner", cart.Request{}, add("p", 1)); err != nil {
					t.Errorf("add: %v", err)
				}
			})
		}
		wg.Wait()
		c, err := a.Cart(ctx, "owner")
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != n || len(c.Lines) != 1 || c.Lines[0].Quantity != n {
			t.Errorf("cart = %+v, want version %d and one line of %d", c, n, n)
		}
	})
}

func TestMutateCartIdempotency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		a, b := replica(t), replica(t)
		op := cart.Op{Kind: cart.Add, ProductID: "p", Quantity: 2}
		req := cart.Request{ID: "req-1", Hash: op.Hash()}

		// The same key from two replicas at once, on a cart with no row yet:
		// applied once, both see the same result.
		results := make([]cart.Cart, 8)
		var wg sync.WaitGroup
		for i := range results {
			s := []catalogsvc.Store{a, b}[i%2]
			wg.Go(func() {
				c, err := s.MutateCart(ctx, "owner", req, add("p", 2))
				if err != nil {
					t.Errorf("mutate: %v", err)
				}
				results[i] = c
			})
		}
		wg.Wait()
		for _, c := range results {
			if c.Version != 1 || c.Lines[0].Quantity != 2 || !c.UpdateTime.Equal(results[0].UpdateTime) {
				t.Errorf("result %+v, want version 1 with 2 of p, as the first", c)
			}
		}

		// Later changes do not alter what a replay returns.
		if _, err := a.MutateCart(ctx, "owner", cart.Request{}, add("q", 1)); err != nil {
			t.Fatal(err)
		}
		replay, err := b.MutateCart(ctx, "owner", req, add("p", 2))
		if err != nil || replay.Version != 1 || len(replay.Lines) != 1 {
			t.Errorf("replay = %+v, %v; want the original result", replay, err)
		}
		other := cart.Request{ID: "req-1", Hash: cart.Op{Kind: cart.Add, ProductID: "p", Quantity: 3}.Hash()}
		if _, err := a.MutateCart(ctx, "owner", other, add("p", 3)); !errors.Is(err, cart.ErrRequestReused) {
			t.Errorf("reused key: %v, want ErrRequestReused", err)
		}
		// Keys are per owner.
		if c, err := a.MutateCart(ctx, "someone-else", req, add("p", 2)); err != nil || c.Version != 1 {
			t.Errorf("same key, other owner: %+v, %v", c, err)
		}
		// A failed change records nothing: a retry may succeed.
		failing := cart.Request{ID: "req-2", Hash: [32]byte{2}}
		boom := errors.New("boom")
		if _, err := a.MutateCart(ctx, "owner", failing, func(cart.Cart) (cart.Cart, bool, error) { return cart.Cart{}, false, boom }); !errors.Is(err, boom) {
			t.Fatalf("failing apply: %v", err)
		}
		if c, err := a.MutateCart(ctx, "owner", failing, add("p", 1)); err != nil || c.Version != 3 {
			t.Errorf("retry after failure: %+v, %v; want version 3", c, err)
		}
		if c, _ := a.Cart(ctx, "owner"); c.Version != 3 || c.Lines[0].Quantity != 3 {
			t.Errorf("cart = %+v", c)
		}

		// Pruning removes keys older than the cutoff only.
		if n, err := a.PruneRequests(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("prune old: %d, %v", n, err)
		}
		if n, err := a.PruneRequests(ctx, time.Now().Add(time.Second)); err != nil || n != 3 {
			t.Errorf("prune all: %d, %v; want 3", n, err)
		}
	})
}

// TestMutateCartConcurrentRetries: many changes to one cart from two
// replicas at once, each sent three times concurrently (a client retrying):
// each is applied exactly once, and every copy of a request gets the same
// answer.
func TestMutateCartConcurrentRetries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		stores := []catalogsvc.Store{replica(t), replica(t)}
		const requests, copies = 40, 3
		results := make([][copies]cart.Cart, requests)
		var want int64
		var wg sync.WaitGroup
		for i := range requests {
			op := cart.Op{Kind: cart.Add, ProductID: "p", Quantity: int64(i%5 + 1)}
			want += op.Quantity
			req := cart.Request{ID: fmt.Sprint("req-", i), Hash: op.Hash()}
			for k := range copies {
				wg.Go(func() {
					c, err := stores[(i+k)%2].MutateCart(ctx, "owner", req, add("p", op.Quantity))
					if err != nil {
						t.Errorf("request %d, copy %d: %v", i, k, err)
					}
					results[i][k] = c
				})
			}
		}
		wg.Wait()
		c, err := stores[0].Cart(ctx, "owner")
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != requests || len(c.Lines) != 1 || c.Lines[0].Quantity != want {
			t.Fatalf("cart = %+v, want version %d and one line of %d", c, requests, want)
		}
		versions := map[int64]bool{}
		for i, r := range results {
			for k := range copies {
				if r[k].Version != r[0].Version || !slices.Equal(r[k].Lines, r[0].Lines) || !r[k].UpdateTime.Equal(r[0].UpdateTime) {
					t.Errorf("request %d: copy %d got %+v, copy 0 %+v", i, k, r[k], r[0])
				}
			}
			if versions[r[0].Version] {
				t.Errorf("request %d: version %d answered to two requests", i, r[0].Version)
			}
			versions[r[0].Version] = true
		}
	})
}

// TestMutateCartExpectedVersionAcrossReplicas: expected_version is checked
// against the stored cart, whatever a replica saw of it before.
func TestMutateCartExpectedVersionAcrossReplicas(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		a, b := replica(t), replica(t)
		expecting := func(id string, v int64) (cart.Request, cart.ApplyFunc) {
			op := cart.Op{Kind: cart.Add, ProductID: "p", Quantity: 1, ExpectedVersion: v, HasExpected: true}
			return cart.Request{ID: id, Hash: op.Hash()}, func(c cart.Cart) (cart.Cart, bool, error) {
				return cart.Apply(c, op, allProducts{}, time.Now())
			}
		}
		if _, err := a.MutateCart(ctx, "owner", cart.Request{}, add("p", 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.MutateCart(ctx, "owner", cart.Request{}, add("p", 1)); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name        string
			s           catalogsvc.Store
			expected    int64
			wantErr     error
			wantVersion int64
		}{
			{"a replica that last saw version 1 expects 2", a, 2, nil, 3},
			{"a stale expectation", b, 2, cart.ErrVersionMismatch, 3},
			{"one from the future", a, 7, cart.ErrVersionMismatch, 3},
			{"the current version", b, 3, nil, 4},
			{"the replica that last wrote expects its own version", b, 4, nil, 5},
			{"the other replica expects it too", a, 4, cart.ErrVersionMismatch, 5},
		}
		for i, st := range steps {
			req, apply := expecting(fmt.Sprint("step-", i), st.expected)
			c, err := st.s.MutateCart(ctx, "owner", req, apply)
			if !errors.Is(err, st.wantErr) || (err == nil && c.Version != st.wantVersion) {
				t.Errorf("%s: %+v, %v; want version %d, error %v", st.name, c, err, st.wantVersion, st.wantErr)
			}
			if c, _ := a.Cart(ctx, "owner"); c.Version != st.wantVersion || c.Lines[0].Quantity != st.wantVersion {
				t.Errorf("%s: stored cart %+v, want version %d", st.name, c, st.wantVersion)
			}
		}
	})
}

// TestCartModelAcrossReplicas runs FuzzCartModel's seed sequences through
// two replicas in turn, so that each change meets a cart the other replica
// changed last: the answers and the stored cart follow the model.
func TestCartModelAcrossReplicas(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, replica func(t *testing.T) catalogsvc.Store) {
		ctx := context.Background()
		stores := []catalogsvc.Store{replica(t), replica(t)}
		now := time.Now()
		for name, data := range modelSeeds() {
			m := newModel(0)
			for step, o := range decodeOps(data) {
				o = o.at(m.version)
				req := cart.Request{ID: o.requestID}
				if o.requestID != "" {
					req.Hash = o.op.Hash()
				}
				got, err := stores[step%2].MutateCart(ctx, name, req, func(cur cart.Cart) (cart.Cart, bool, error) {
					return cart.Apply(cur, o.op, modelCatalog{}, now)
				})
				wantV, wantLines, wantErr := m.apply(o)
				if !errors.Is(err, wantErr) || (err == nil && (got.Version != wantV || !equalLines(got.Lines, wantLines))) {
					t.Fatalf("%s step %d %+v: v%d %v, %v; want v%d %v, %v", name, step, o, got.Version, got.Lines, err, wantV, wantLines, wantErr)
				}
			}
			got, err := stores[0].Cart(ctx, name)
			if err != nil || got.Version != m.version || !equalLines(got.Lines, m.lines) {
				t.Fatalf("%s: stored v%d %v (%v), want v%d %v", name, got.Version, got.Lines, err, m.version, m.lines)
			}
		}
	})
}

func BenchmarkMutateCart(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := openForBench(b, be.name)
			ctx := context.Background()
			var i int64
			var mu sync.Mutex
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				i++
				owner := fmt.Sprint("owner-", i)
				mu.Unlock()
				for q := int64(0); pb.Next(); q++ {
					set := func(c cart.Cart) (cart.Cart, bool, error) {
						return cart.Apply(c, cart.Op{Kind: cart.Set, ProductID: "p", Quantity: q%cart.MaxQuantity + 1}, allProducts{}, time.Now())
					}
					if _, err := s.MutateCart(ctx, owner, cart.Request{}, set); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func openForBench(b *testing.B, name string) catalogsvc.Store {
	if name == "sqlite" {
		return open(b, filepath.Join(b.TempDir(), "c.db"))
	}
	return open(b, sqldbtest.DSN(b))
}

func BenchmarkCartRead(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := openForBench(b, be.name)
			ctx := context.Background()
			if _, err := s.MutateCart(ctx, "owner", cart.Request{}, add("p", 1)); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Cart(ctx, "owner"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
