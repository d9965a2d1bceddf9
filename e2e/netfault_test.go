package e2e_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/faultnet"
)

// netProfile is how long the network faults last. make test runs the short
// one; make chaos sets TOKENCART_CHAOS=long.
type netProfile struct {
	name     string
	shoppers int
	window   time.Duration // how long a fault lasts while the shoppers run
}

func netFaultProfile() netProfile {
	if os.Getenv("TOKENCART_CHAOS") == "long" {
		return netProfile{name: "long", shoppers: 16, window: time.Minute}
	}
	return netProfile{name: "short", shoppers: 6, window: 2 * time.Second}
}

// Staleness settings of the network-fault cluster: a replica cut off from
// authsvc applies --stale-policy this long after the feed went silent.
const (
	netStaleness = 3 * time.Second
	netHeartbeat = time.Second
)

// netCluster is a cluster whose every hop runs through a faultnet proxy:
// clients to each replica, each replica to authsvc, and (PostgreSQL mode)
// the replicas to their database.
type netCluster struct {
	*testCluster
	replicas  []string          // the replicas' own addresses
	toAuth    []*faultnet.Proxy // replica i's link to authsvc
	toReplica []*faultnet.Proxy // the clients' link to replica i
	db        *faultnet.Proxy   // the replicas' link to PostgreSQL, nil in other modes
	auth      authv1.AuthServiceClient
	products  []string
}

func newProxy(t *testing.T, upstream string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.Listen("127.0.0.1:0", upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestNetworkFaults runs the shoppers through faults the way a network
// shows them — authsvc far away and jittery, one replica partitioned from
// authsvc, PostgreSQL stalled, a client's connection gone half-open, a slow
// reader — in every cart mode, and checks after each that every cart equals
// the model of its acknowledged mutations.
func TestNetworkFaults(t *testing.T) {
	prof := netFaultProfile()
	for _, mode := range cartModes() {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			runNetFaults(t, prof, mode.cfg(t))
		})
	}
}

func runNetFaults(t *testing.T, prof netProfile, cfg clusterConfig) {
	cfg.authArgs = append(cfg.authArgs, "--revocation-heartbeat", netHeartbeat.String())
	cfg.catalogArgs = append(cfg.catalogArgs, "--revocation-staleness", netStaleness.String())
	n := &netCluster{testCluster: startCluster(t, cfg), db: cfg.catalogDB}
	for range 3 {
		toAuth := newProxy(t, n.authAddr)
		addr := n.addReplica("--auth-addr", toAuth.Addr())
		n.replicas = append(n.replicas, addr)
		n.toAuth = append(n.toAuth, toAuth)
		n.toReplica = append(n.toReplica, newProxy(t, addr))
	}
	ctx := t.Context()
	authConn, err := grpc.NewClient(n.authAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	defer authConn.Close()
	n.auth = authv1.NewAuthServiceClient(authConn)
	n.products = someProducts(t, ctx, n.replicas[0], 8)
	var viaProxies []string
	for _, p := range n.toReplica {
		viaProxies = append(viaProxies, p.Addr())
	}

	st := newStats()
	shoppers := newShoppers(t, prof.shoppers, authConn, viaProxies, n.products, st)
	// Probes are accounts outside the shoppers' loop: the scenarios revoke
	// their tokens and time their calls.
	probes := newShoppers(t, 4, authConn, viaProxies, n.products, newStats())

	scenarios := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"authsvc far away", func(t *testing.T) { n.authFarAway(t, prof, probes) }},
		{"authsvc partitioned", func(t *testing.T) { n.authPartition(t, probes[3]) }},
		{"database stalled", func(t *testing.T) { n.databaseStall(t, prof, probes[2]) }},
		{"half-open client", func(t *testing.T) { n.halfOpen(t) }},
		{"slow reader", func(t *testing.T) { n.slowReader(t, prof) }},
	}
	for _, sc := range scenarios {
		ok := t.Run(sc.name, func(t *testing.T) {
			stop := shopping(shoppers, st)
			defer func() {
				if err := stop(); err != nil {
					t.Error(err)
				}
				lost, doubled := checkModels(t, ctx, shoppers)
				t.Logf("%d acknowledged mutations so far, %d lost, %d doubled, %d Unauthenticated for valid tokens",
					st.ackedCount(), lost, doubled, st.unauthValidCount())
			}()
			sc.run(t)
		})
		if !ok {
			return
		}
	}
	if n := st.unauthValidCount(); n > 0 {
		t.Errorf("%d calls with valid tokens were refused as Unauthenticated", n)
	}
}

func newShoppers(t *testing.T, n int, authConn *grpc.ClientConn, addrs, products []string, st *stats) []*shopper {
	t.Helper()
	out := make([]*shopper, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i], errs[i] = newShopper(t.Context(), i, authConn, addrs, products, st) })
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	t.Cleanup(func() {
		for _, s := range out {
			s.conn.Close()
		}
	})
	return out
}

// shopping runs the shoppers' random mutations until the returned stop is
// called; stop waits for the mutations in flight to be acknowledged and
// returns the shoppers' errors.
func shopping(shoppers []*shopper, st *stats) (stop func() error) {
	done := make(chan struct{})
	giveUp, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	errs := make([]error, len(shoppers))
	var wg sync.WaitGroup
	for i, s := range shoppers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := s.do(giveUp, s.randomMutation(), st); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	return func() error {
		close(done)
		wg.Wait()
		cancel()
		return errors.Join(errs...)
	}
}

// authFarAway puts authsvc 200 ms (±50 ms) away from every replica, each
// way. Cart calls must keep their latency, since no replica asks authsvc on
// the request path; revocations must still reach every replica; a key
// rotation must lose no token.
func (n *netCluster) authFarAway(t *testing.T, prof netProfile, probes []*shopper) {
	near := cartLatencies(t, probes[0], prof.window)
	for _, p := range n.toAuth {
		must(t, p.Latency(faultnet.Both, 200*time.Millisecond, 50*time.Millisecond))
	}
	defer func() {
		for _, p := range n.toAuth {
			p.Heal()
		}
	}()
	admin := adminToken(t, t.Context(), n.auth)
	if _, err := n.auth.RotateSigningKey(client.WithToken(t.Context(), admin), &authv1.RotateSigningKeyRequest{}); err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	far := cartLatencies(t, probes[0], prof.window)

	// Tokens signed by the new key, once it signs, are accepted everywhere.
	time.Sleep(keyPublishDelay)
	var slowest time.Duration
	for _, p := range probes[1:3] {
		d, err := p.revoke(t.Context(), n.replicas)
		if err != nil {
			t.Fatalf("revocation with authsvc far away: %v", err)
		}
		slowest = max(slowest, d)
		tok, _ := p.currentToken()
		for _, addr := range n.replicas {
			if _, err := getCart(t.Context(), addr, tok); err != nil {
				t.Errorf("replica %s, a token signed after the rotation: %v", addr, err)
			}
		}
	}
	p50near, p50far := percentile(near, 50), percentile(far, 50)
	t.Logf("authsvc 200±50 ms away each way: GetCart p50 %v -> %v, p99 %v -> %v (%d and %d calls); slowest revocation %v",
		p50near, p50far, percentile(near, 99), percentile(far, 99), len(near), len(far), slowest.Round(time.Millisecond))
	// A call that waited on authsvc would take at least 300 ms more (150 ms
	// each way at the least); 100 ms is room for a busy machine's noise.
	if p50far > p50near+100*time.Millisecond {
		t.Errorf("GetCart p50 %v with authsvc 200 ms away, %v without: authsvc is on the request path", p50far, p50near)
	}
	if slowest > time.Second {
		t.Errorf("a revoked token was still accepted %v after revocation (bound 1 s)", slowest)
	}
}

// cartLatencies times the probe's GetCart calls, one after another, for d.
func cartLatencies(t *testing.T, probe *shopper, d time.Duration) []time.Duration {
	t.Helper()
	var out []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end) || len(out) < 20; {
		tok, _ := probe.currentToken()
		start := time.Now()
		_, err := probe.cart.GetCart(client.WithToken(t.Context(), tok), &catalogv1.GetCartRequest{})
		if err != nil {
			if status.Code(err) == codes.ResourceExhausted {
				time.Sleep(retryAfter(err))
				continue
			}
			t.Fatalf("GetCart: %v", err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100].Round(100 * time.Microsecond)
}

// getCart calls GetCart on the replica at addr alone.
func getCart(ctx context.Context, addr, tok string) (*catalogv1.GetCartResponse, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(client.WithToken(ctx, tok), 5*time.Second)
	defer cancel()
	return catalogv1.NewCartServiceClient(conn).GetCart(ctx, &catalogv1.GetCartRequest{})
}

// checkToken is an AddItem that fails validation at addr: it passes the
// token check and stops, so its code says what the replica made of tok.
func checkToken(ctx context.Context, addr, tok string) codes.Code {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return codes.Unknown
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(client.WithToken(ctx, tok), 5*time.Second)
	defer cancel()
	_, err = catalogv1.NewCartServiceClient(conn).AddItem(ctx, &catalogv1.AddItemRequest{ProductId: "probe", Quantity: 0})
	return status.Code(err)
}

// authPartition cuts replica 0 off from authsvc, silently (no FIN, no RST).
// Once its feed is stale it must refuse every token with Unavailable (the
// stale policy here is introspect, and introspection cannot reach authsvc),
// never accept one revoked meanwhile, while the other replicas serve; after
// healing it must catch up and refuse the token revoked during the
// partition.
func (n *netCluster) authPartition(t *testing.T, probe *shopper) {
	ctx := t.Context()
	cut, others := n.replicas[0], n.replicas[1:]
	valid, _ := probe.currentToken()
	if code := checkToken(ctx, cut, valid); code != codes.InvalidArgument {
		t.Fatalf("replica %s before the partition: %v, want the token accepted (InvalidArgument)", cut, code)
	}
	must(t, n.toAuth[0].Stall(faultnet.Both, 0))
	healed := false
	defer func() {
		if !healed {
			n.toAuth[0].Heal()
		}
	}()
	start := time.Now()
	expect.Eventually(t, netStaleness+20*time.Second, "the partitioned replica to refuse calls with Unavailable", func() bool {
		return checkToken(ctx, cut, valid) == codes.Unavailable
	})
	stale := time.Since(start)
	for _, addr := range others {
		if code := checkToken(ctx, addr, valid); code != codes.InvalidArgument {
			t.Errorf("replica %s during the partition: %v, want the token accepted (InvalidArgument)", addr, code)
		}
	}

	// A revocation made during the partition.
	old := valid
	if _, err := n.auth.Logout(client.WithToken(ctx, old), &authv1.LogoutRequest{}); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	probe.mu.Lock()
	probe.revokedAt[old] = time.Now()
	probe.mu.Unlock()
	expect.Eventually(t, 10*time.Second, "the other replicas to refuse the revoked token", func() bool {
		for _, addr := range others {
			if checkToken(ctx, addr, old) != codes.Unauthenticated {
				return false
			}
		}
		return true
	})
	if code := checkToken(ctx, cut, old); code != codes.Unavailable {
		t.Errorf("partitioned replica, a token revoked during the partition: %v, want Unavailable", code)
	}

	n.toAuth[0].Heal()
	healed = true
	start = time.Now()
	expect.Eventually(t, 30*time.Second, "the healed replica to refuse the token revoked during the partition", func() bool {
		code := checkToken(ctx, cut, old)
		if code == codes.InvalidArgument {
			t.Errorf("the healed replica accepted a token revoked during the partition")
		}
		return code == codes.Unauthenticated
	})
	caughtUp := time.Since(start)
	must(t, probe.login(ctx))
	fresh, _ := probe.currentToken()
	expect.Eventually(t, 10*time.Second, "the healed replica to accept a valid token", func() bool {
		return checkToken(ctx, cut, fresh) == codes.InvalidArgument
	})
	t.Logf("partition: Unavailable %v after the cut (staleness %v); the revocation made meanwhile refused %v after healing",
		stale.Round(time.Millisecond), netStaleness, caughtUp.Round(time.Millisecond))
}

// databaseStall stalls the replicas' PostgreSQL link (data dropped, nothing
// closed) for longer than a call's deadline. Calls must fail with
// Unavailable or DeadlineExceeded within their deadline, and the replica
// must not keep running them past it, each holding a goroutine and a pooled
// connection for as long as the stall lasts; the pool must serve again once
// the link is healed, and a mutation resent with its request_id must be
// applied once. The calls go to a replica of their own, so that theirs are
// the only ones in flight there.
func (n *netCluster) databaseStall(t *testing.T, prof netProfile, probe *shopper) {
	if n.db == nil {
		t.Skip("this mode has no database link to stall")
	}
	ctx := t.Context()
	addr := n.addReplica()
	admin := n.adminAddr(addr)
	// The client's retry policy resends a call that meets the replica
	// closing the connection for its age.
	conn, err := client.Dial(addr, client.Options{})
	must(t, err)
	defer conn.Close()
	cart := catalogv1.NewCartServiceClient(conn)
	tok, _ := probe.currentToken()
	add := func(ctx context.Context, requestID string) (*catalogv1.AddItemResponse, error) {
		return cart.AddItem(client.WithToken(ctx, tok), &catalogv1.AddItemRequest{ProductId: n.products[0], Quantity: 2, RequestId: requestID})
	}
	before, err := getCart(ctx, addr, tok)
	must(t, err)

	must(t, n.db.Stall(faultnet.Both, 0))
	defer n.db.Heal() // when the test fails before it heals the link
	const deadline = 2 * time.Second
	requestID := client.NewRequestID()
	took := make([]time.Duration, 8)
	var wg sync.WaitGroup
	for i := range took {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			_, err := add(cctx, requestID)
			took[i] = time.Since(start)
			if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
				t.Errorf("AddItem with PostgreSQL stalled: %v, want Unavailable or DeadlineExceeded", err)
			}
		})
	}
	wg.Wait()
	slowest := slices.Max(took)
	if slowest > deadline+2*time.Second {
		t.Errorf("AddItem with PostgreSQL stalled took %v, deadline %v", slowest, deadline)
	}
	running := func() float64 {
		return scrapeSum(t, admin, "grpc_server_started_total", `grpc_method="AddItem"`) -
			scrapeSum(t, admin, "grpc_server_handled_total", `grpc_method="AddItem"`)
	}
	expect.Eventually(t, 5*time.Second, "the replica to stop the calls past their deadline", func() bool { return running() == 0 })
	time.Sleep(prof.window)
	if r := running(); r != 0 {
		t.Errorf("%v AddItem calls still run on the replica %v after their deadline", r, prof.window)
	}
	n.db.Heal()
	healed := time.Now()

	var version int64
	expect.Eventually(t, 30*time.Second, "the replica's pool to recover", func() bool {
		cctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		resp, err := add(cctx, requestID)
		version = resp.GetCart().GetVersion()
		return err == nil
	})
	t.Logf("PostgreSQL stalled: 8 AddItem calls failed within %v (deadline %v), none left running on the replica; the pool served again %v after healing",
		slowest.Round(time.Millisecond), deadline, time.Since(healed).Round(time.Millisecond))
	again, err := add(ctx, requestID)
	must(t, err)
	after, err := getCart(ctx, addr, tok)
	must(t, err)
	if again.GetCart().GetVersion() != version || after.GetCart().GetVersion() != before.GetCart().GetVersion()+1 {
		t.Errorf("versions: %d before, %d and %d from the resent AddItem, %d after; want one change",
			before.GetCart().GetVersion(), version, again.GetCart().GetVersion(), after.GetCart().GetVersion())
	}
	for _, addr := range n.replicas {
		expect.Eventually(t, 30*time.Second, "replica "+addr+" to serve carts again", func() bool {
			_, err := getCart(ctx, addr, tok)
			return err == nil
		})
	}
}

// halfOpen stalls a client's link to a replica both ways, with no FIN and
// no RST: the client's keepalive must drop that connection, and its calls
// go to the other replica, within client.Keepalive's Time + Timeout. The
// replica keeps its connections for an hour, so that its own
// --max-connection-age cannot end the half-open one first. The shoppers'
// link to replica 0 is stalled too.
func (n *netCluster) halfOpen(t *testing.T) {
	ctx := t.Context()
	lasting := newProxy(t, n.addReplica("--max-connection-age", "1h"))
	conn, err := client.Dial(lasting.Addr()+","+n.replicas[1], client.Options{CallTimeout: time.Second})
	must(t, err)
	defer conn.Close()
	catalog := catalogv1.NewCatalogServiceClient(conn)
	call := func() error {
		_, err := catalog.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: n.products[0]})
		if status.Code(err) == codes.ResourceExhausted {
			return nil // answered: the connection is alive
		}
		return err
	}
	for range 20 {
		must(t, call())
	}
	must(t, lasting.Stall(faultnet.Both, 0))
	must(t, n.toReplica[0].Stall(faultnet.Both, 0))
	defer n.toReplica[0].Heal()
	start := time.Now()
	bound := client.Keepalive.Time + client.Keepalive.Timeout + 5*time.Second
	// Recovered: 20 calls in a row answered, after at least one failed.
	var failed bool
	var streak int
	var streakFrom time.Time
	for streak < 20 {
		if time.Since(start) > bound+10*time.Second {
			t.Fatalf("calls still fail %v after the connection went half-open (keepalive %v + %v)",
				time.Since(start).Round(time.Millisecond), client.Keepalive.Time, client.Keepalive.Timeout)
		}
		if err := call(); err != nil {
			failed, streak = true, 0
			continue
		}
		if streak == 0 {
			streakFrom = time.Now()
		}
		streak++
	}
	recovered := streakFrom.Sub(start)
	t.Logf("half-open connection: calls all answered again %v after the stall (keepalive %v + %v)",
		recovered.Round(time.Millisecond), client.Keepalive.Time, client.Keepalive.Timeout)
	if !failed {
		t.Errorf("no call failed after the stall: the stall did not reach the client")
	}
	if recovered > bound {
		t.Errorf("calls recovered %v after the connection went half-open, bound %v", recovered, bound)
	}
}
