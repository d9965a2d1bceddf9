package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// Scenario names, as used by Options.Only, the report and the ratios.
const (
	ScFloor           = "floor"
	ScGetCart         = "getcart"
	ScGetCartNoCache  = "getcart-nocache"
	ScGetCartRemote   = "getcart-remote"
	ScGetCartSession  = "getcart-session"
	ScGetCartLogWarn  = "getcart-warn"
	ScGetProduct      = "getproduct"
	ScListProducts    = "listproducts"
	ScAddItemRequest  = "additem-request"
	ScAddItemSQLite   = "additem-sqlite"
	ScAddItemPostgres = "additem-postgres"
	ScUpsertRaw       = "upsert-raw"
	ScStoreTxnRaw     = "storetxn-raw"
	ScLogin           = "login"
	ScReplicas2       = "replicas-2"
	ScReplicas3       = "replicas-3"
	ScFloorOwnConn    = "floor-ownconn"
	ScGetCartOwnConn  = "getcart-ownconn"
)

// scenario is one kind of load against one configuration.
type scenario struct {
	name  string
	title string
	// procs are the processes that serve the calls: their CPU time is
	// charged to the scenario and they are the ones profiled.
	procs []string
	// pg marks scenarios that need PostgreSQL.
	pg bool
	// callers, if not 0, caps the number of callers below
	// Options.Concurrency.
	callers int
	// extra scenarios run only when named in Options.Only: experiments
	// whose answer RESULTS.md records, not part of every run.
	extra bool
	// minDuration, if longer than Options.Duration, is this scenario's
	// measured window: long enough for a few of its slow calls.
	minDuration time.Duration
	// newCaller prepares caller i (its user, token, first request) and
	// returns its call.
	newCaller func(ctx context.Context, e *env, i int) (call, error)
}

// scenarios returns every scenario, in the order of the report.
func scenarios() []scenario {
	return []scenario{
		{name: ScFloor, title: "grpc.health.v1.Health/Check (floor)", procs: []string{procCatalog}, newCaller: healthCallerOn(procCatalog)},
		{name: ScGetCart, title: "GetCart, request mode, local auth, token cache on (also the 1-replica point)", procs: []string{procCatalog}, newCaller: getCartCaller(procCatalog)},
		{name: ScGetCartNoCache, title: "GetCart, request mode, local auth, --token-cache-size=0", procs: []string{procNoCache}, newCaller: getCartCaller(procNoCache)},
		{name: ScGetCartRemote, title: "GetCart, request mode, --auth-mode=remote --introspect-cache-ttl=0", procs: []string{procRemote, procAuth}, newCaller: getCartCaller(procRemote)},
		{name: ScGetCartSession, title: "GetCart, session row lookup in PostgreSQL per request (baseline)", procs: []string{procSession}, pg: true, newCaller: sessionCaller},
		{name: ScGetCartLogWarn, title: "GetCart as getcart, --log-level=warn (getcart runs at the default, info)", procs: []string{procLogWarn}, newCaller: getCartCaller(procLogWarn)},
		{name: ScGetProduct, title: "GetProduct (public)", procs: []string{procCatalog}, newCaller: getProductCallerOn(procCatalog)},
		{name: ScListProducts, title: "ListProducts, default page of 20 (public)", procs: []string{procCatalog}, newCaller: listProductsCaller},
		{name: ScAddItemRequest, title: "AddItem, request mode (cart sealed in cart_state)", procs: []string{procCatalog}, newCaller: addItemCaller(procCatalog, true)},
		{name: ScAddItemSQLite, title: "AddItem, store mode, SQLite", procs: []string{procStoreSQLite}, newCaller: addItemCaller(procStoreSQLite, false)},
		{name: ScAddItemPostgres, title: "AddItem, store mode, PostgreSQL", procs: []string{procStorePG}, pg: true, newCaller: addItemCaller(procStorePG, false)},
		{name: ScUpsertRaw, title: "raw pgx upsert loop on the same carts table (store ceiling)", pg: true, newCaller: upsertCaller},
		{name: ScStoreTxnRaw, title: "the store's own cart change (idempotency key, version bump; one compare-and-swap statement, the row lock when contended) through its Go API from a loop with no service", pg: true, newCaller: storeTxnCaller},
		{name: ScLogin, title: "Login, argon2id at authsvc's defaults, 8 callers", procs: []string{procAuth}, callers: loginCallers, minDuration: 500 * time.Millisecond, newCaller: loginCaller},
		{name: ScReplicas2, title: "GetCart as getcart, round robin over 2 replicas", procs: []string{procCatalog, procCatalog2}, newCaller: getCartCaller(procCatalog, procCatalog2)},
		{name: ScReplicas3, title: "GetCart as getcart, round robin over 3 replicas", procs: []string{procCatalog, procCatalog2, procCatalog3}, newCaller: getCartCaller(procCatalog, procCatalog2, procCatalog3)},
		{name: ScFloorOwnConn, title: "floor, each caller its own connection", procs: []string{procCatalog}, extra: true, newCaller: healthCallerOwnConn},
		{name: ScGetCartOwnConn, title: "getcart, each caller its own connection (its token stays HPACK-indexed)", procs: []string{procCatalog}, extra: true, newCaller: getCartCallerOwnConn},
	}
}

func healthCallerOn(proc string) func(context.Context, *env, int) (call, error) {
	return func(_ context.Context, e *env, _ int) (call, error) {
		conn, err := e.conn(proc)
		if err != nil {
			return nil, err
		}
		return healthOn(conn), nil
	}
}

// healthCallerOwnConn is healthCallerOn(procCatalog) over a connection of
// the caller's own.
func healthCallerOwnConn(_ context.Context, e *env, i int) (call, error) {
	conn, err := e.ownConn(i, procCatalog)
	if err != nil {
		return nil, err
	}
	return healthOn(conn), nil
}

// healthOn is the floor's call: a health check over conn.
func healthOn(conn grpc.ClientConnInterface) call {
	h := healthpb.NewHealthClient(conn)
	req := &healthpb.HealthCheckRequest{}
	return func(ctx context.Context) error {
		_, err := h.Check(ctx, req)
		return err
	}
}

// getCartCallerOwnConn is getCartCaller(procCatalog) over a connection of
// the caller's own, as an end user's device has: HPACK then sends its
// token once and an index afterwards, where 50 users sharing a
// connection overflow the 4 KiB header table and send every token whole.
func getCartCallerOwnConn(ctx context.Context, e *env, i int) (call, error) {
	conn, err := e.ownConn(i, procCatalog)
	if err != nil {
		return nil, err
	}
	return getCartOn(ctx, conn, e.users[i].token)
}

// getCartCaller reads the caller's own cart, sending back the cart_state
// the first call returned, as a client does: in request mode the handler
// opens it and answers without touching a store, so the call costs the
// chain, the token check and little else.
func getCartCaller(procs ...string) func(context.Context, *env, int) (call, error) {
	return func(ctx context.Context, e *env, i int) (call, error) {
		conn, err := e.conn(procs...)
		if err != nil {
			return nil, err
		}
		return getCartOn(ctx, conn, e.users[i].token)
	}
}

func getCartOn(ctx context.Context, conn *client.Conn, token string) (call, error) {
	carts := catalogv1.NewCartServiceClient(conn)
	tctx := client.WithToken(ctx, token)
	first, err := carts.GetCart(tctx, &catalogv1.GetCartRequest{})
	if err != nil {
		return nil, fmt.Errorf("first GetCart: %w", err)
	}
	req := &catalogv1.GetCartRequest{CartState: first.GetCartState()}
	return func(context.Context) error {
		_, err := carts.GetCart(tctx, req)
		return err
	}, nil
}

func sessionCaller(ctx context.Context, e *env, i int) (call, error) {
	conn, err := e.conn(procSession)
	if err != nil {
		return nil, err
	}
	carts := catalogv1.NewCartServiceClient(conn)
	tctx := client.WithToken(ctx, e.users[i].session)
	req := &catalogv1.GetCartRequest{}
	return func(context.Context) error {
		_, err := carts.GetCart(tctx, req)
		return err
	}, nil
}

func getProductCallerOn(proc string) func(context.Context, *env, int) (call, error) {
	return func(_ context.Context, e *env, i int) (call, error) {
		conn, err := e.conn(proc)
		if err != nil {
			return nil, err
		}
		c := catalogv1.NewCatalogServiceClient(conn)
		req := &catalogv1.GetProductRequest{ProductId: e.products[i%len(e.products)]}
		return func(ctx context.Context) error {
			_, err := c.GetProduct(ctx, req)
			return err
		}, nil
	}
}

func listProductsCaller(_ context.Context, e *env, _ int) (call, error) {
	conn, err := e.conn(procCatalog)
	if err != nil {
		return nil, err
	}
	c := catalogv1.NewCatalogServiceClient(conn)
	req := &catalogv1.ListProductsRequest{}
	return func(ctx context.Context) error {
		_, err := c.ListProducts(ctx, req)
		return err
	}, nil
}

// addItemCaller adds one of each of the first products in turn to the
// caller's own cart (its own user: the store is measured, not contention
// on one row), each call with a fresh idempotency key. A line that
// reaches the 999 cap makes the caller clear its cart.
func addItemCaller(proc string, carried bool) func(context.Context, *env, int) (call, error) {
	return func(ctx context.Context, e *env, i int) (call, error) {
		conn, err := e.conn(proc)
		if err != nil {
			return nil, err
		}
		carts := catalogv1.NewCartServiceClient(conn)
		tctx := client.WithToken(ctx, e.users[i].token)
		var state []byte
		n := i
		return func(context.Context) error {
			n++
			resp, err := carts.AddItem(tctx, &catalogv1.AddItemRequest{
				ProductId: e.products[n%len(e.products)], Quantity: 1,
				RequestId: client.NewRequestID(), CartState: state,
			})
			if status.Code(err) == codes.FailedPrecondition {
				cleared, err := carts.ClearCart(tctx, &catalogv1.ClearCartRequest{RequestId: client.NewRequestID(), CartState: state})
				if carried && err == nil {
					state = cleared.GetCartState()
				}
				return err
			}
			if carried && err == nil {
				state = resp.GetCartState()
			}
			return err
		}, nil
	}
}

// sqlUpsertCart is the store's ceiling: one autocommitted statement per
// change, durable like the store's transactions (synchronous_commit as the
// server has it), with no idempotency key and no read of the current cart.
const sqlUpsertCart = `INSERT INTO carts (owner, version, lines, update_time) VALUES ($1, 1, $2, $3)
ON CONFLICT (owner) DO UPDATE SET version = carts.version + 1, lines = EXCLUDED.lines, update_time = EXCLUDED.update_time`

// upsertCaller writes the caller's own cart row, its lines growing as
// AddItem's do, through a pool the size of the store's.
func upsertCaller(_ context.Context, e *env, i int) (call, error) {
	if e.rawPool == nil {
		return nil, fmt.Errorf("no PostgreSQL pool")
	}
	owner := fmt.Sprintf("raw-%s-%03d", e.users[i].id, i)
	qty := map[string]int64{}
	n := i
	return func(ctx context.Context) error {
		n++
		p := e.products[n%len(e.products)]
		qty[p] = qty[p]%998 + 1
		lines := make([]cart.Line, 0, len(qty))
		for _, id := range e.products {
			if q := qty[id]; q > 0 {
				lines = append(lines, cart.Line{ProductID: id, Quantity: q})
			}
		}
		_, err := e.rawPool.Exec(ctx, sqlUpsertCart, owner, string(cart.EncodeLines(lines)), time.Now().UnixMicro())
		return err
	}, nil
}

// storeTxnCaller makes the PostgreSQL store's cart change (the
// idempotency key, the version bump, atomically) through
// the store's own API, from a raw loop with no service around it. Against
// it AddItem measures the service around the store; against upsert-raw it
// measures what the guarantees cost.
func storeTxnCaller(_ context.Context, e *env, i int) (call, error) {
	if e.pgStore == nil {
		return nil, fmt.Errorf("no PostgreSQL store")
	}
	owner := fmt.Sprintf("txn-%s-%03d", e.users[i].id, i)
	qty := map[string]int64{} // the caller's cart is its own: this is its content
	n := i
	return func(ctx context.Context) error {
		n++
		p := e.products[n%len(e.products)]
		// Lines stay under the quantity limit, as in the upsert loop.
		op := cart.Op{Kind: cart.Add, ProductID: p, Quantity: 1}
		if qty[p] >= 998 {
			op = cart.Op{Kind: cart.Set, ProductID: p, Quantity: 1}
		}
		req := cart.Request{ID: client.NewRequestID(), Hash: op.Hash()}
		c, err := e.pgStore.MutateCart(ctx, owner, req, func(c cart.Cart) (cart.Cart, bool, error) {
			return cart.Apply(c, op, anyProduct{}, time.Now())
		})
		if err == nil {
			j := slices.IndexFunc(c.Lines, func(l cart.Line) bool { return l.ProductID == p })
			qty[p] = c.Lines[j].Quantity
		}
		return err
	}, nil
}

// anyProduct is a catalog that has every product: the store-txn loop
// measures the store, not the catalog.
type anyProduct struct{}

func (anyProduct) Has(string) bool { return true }

// loginCallers is the Login scenario's concurrency. Hashing is CPU-bound
// and authsvc runs two hashes at once on two cores (--hash-concurrency),
// shedding calls that wait over a second for a slot: 50 callers would only
// measure that queue. 8 keep both slots busy with short queues.
const loginCallers = 8

// loginCaller logs in as the caller's own account: the per-account
// throttle never applies (every login succeeds), the argon2id hash does.
func loginCaller(_ context.Context, e *env, i int) (call, error) {
	conn, err := e.conn(procAuth)
	if err != nil {
		return nil, err
	}
	auth := authv1.NewAuthServiceClient(conn)
	req := &authv1.LoginRequest{Email: e.users[i].email, Password: benchPassword}
	return func(ctx context.Context) error {
		_, err := auth.Login(ctx, req)
		return err
	}, nil
}

// ScenarioNames returns the names of the scenarios a run without
// Options.Only runs, in report order.
func ScenarioNames() []string {
	var out []string
	for _, s := range scenarios() {
		if !s.extra {
			out = append(out, s.name)
		}
	}
	return out
}

// ExtraScenarioNames returns the scenarios that run only when named (the
// variant ones need Options.VariantEnv or Options.VariantBinDir).
func ExtraScenarioNames() []string {
	var out []string
	for _, s := range append(scenarios(), variantScenarios()...) {
		if s.extra {
			out = append(out, s.name)
		}
	}
	return out
}

// Scenarios of the A/B variant (Options.VariantEnv, Options.VariantBinDir).
const (
	ScFloorB      = "floor-b"
	ScGetCartB    = "getcart-b"
	ScGetProductB = "getproduct-b"
)

func variantScenarios() []scenario {
	return []scenario{
		{name: ScFloorB, title: "floor on the variant catalog-b", procs: []string{procVariant}, extra: true, newCaller: healthCallerOn(procVariant)},
		{name: ScGetCartB, title: "getcart on the variant catalog-b", procs: []string{procVariant}, extra: true, newCaller: getCartCaller(procVariant)},
		{name: ScGetProductB, title: "getproduct on the variant catalog-b", procs: []string{procVariant}, extra: true, newCaller: getProductCallerOn(procVariant)},
	}
}
