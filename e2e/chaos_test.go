package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/progress"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// profile is how long and how hard a chaos run is. make test runs the
// short one; make chaos sets TOKENCART_CHAOS=long.
type profile struct {
	name     string
	shoppers int
	cycles   int           // fault cycles, each: kill+restart, scale up, rotate, revoke, SIGTERM, scale down, database cut (PostgreSQL mode)
	step     time.Duration // pause between faults
	// floor is the least acknowledged mutations per second before the
	// first fault: a stalled cluster cannot pass.
	floor float64
}

func chaosProfile() profile {
	if os.Getenv("TOKENCART_CHAOS") == "long" {
		return profile{name: "long", shoppers: 24, cycles: 8, step: 3 * time.Second, floor: 40}
	}
	return profile{name: "short", shoppers: 20, cycles: 1, step: time.Second, floor: 20}
}

// cartMode is a way to run the cluster: where the carts live, and the
// databases.
type cartMode struct {
	name string
	cfg  func(t *testing.T) clusterConfig
}

// cartModes are the cart modes every cluster test runs in.
func cartModes() []cartMode {
	return []cartMode{
		{"sqlite", func(t *testing.T) clusterConfig {
			dir := t.TempDir()
			return clusterConfig{authDSN: filepath.Join(dir, "auth.db"), catalogDSN: filepath.Join(dir, "catalog.db")}
		}},
		{"postgres", func(t *testing.T) clusterConfig {
			db, catalogDSN := sqldbtest.Proxy(t, sqldbtest.DSN(t))
			return clusterConfig{authDSN: sqldbtest.DSN(t), catalogDSN: catalogDSN, catalogDB: db}
		}},
		{"request", func(t *testing.T) clusterConfig {
			var k [32]byte
			_, _ = rand.Read(k[:])
			return clusterConfig{
				authDSN:     filepath.Join(t.TempDir(), "auth.db"),
				catalogDSN:  filepath.Join(t.TempDir(), "catalog.db"),
				catalogArgs: []string{"--cart-mode", "request", "--cart-key", base64.StdEncoding.EncodeToString(k[:])},
			}
		}},
	}
}

func TestChaos(t *testing.T) {
	prof := chaosProfile()
	for _, mode := range cartModes() {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			runChaos(t, prof, mode.cfg(t))
		})
	}
}

// faultLog counts the faults a run injected.
type faultLog struct {
	mu     sync.Mutex // guards counts
	counts map[string]int
}

func (f *faultLog) add(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[kind]++
}

func runChaos(t *testing.T, prof profile, cfg clusterConfig) {
	c := startCluster(t, cfg)
	for range 3 {
		c.addReplica()
	}
	ctx := context.Background()
	authConn, err := grpc.NewClient(c.authAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer authConn.Close()
	auth := authv1.NewAuthServiceClient(authConn)
	adminToken := adminToken(t, ctx, auth)
	products := someProducts(t, ctx, c.live()[0], 8)

	st := newStats()
	shoppers := make([]*shopper, prof.shoppers)
	{
		var wg sync.WaitGroup
		errs := make([]error, prof.shoppers)
		for i := range shoppers {
			wg.Go(func() { shoppers[i], errs[i] = newShopper(ctx, i, authConn, c.live(), products, st) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	defer func() {
		for _, s := range shoppers {
			s.conn.Close()
		}
	}()
	setReplicas := func(addrs []string) {
		for _, s := range shoppers {
			if err := s.conn.SetReplicas(addrs); err != nil {
				t.Error(err)
			}
		}
	}

	// Shoppers mutate until stop closes; each then finishes the mutation
	// it has in flight (giveUp bounds that) so every model is exact.
	stop := make(chan struct{})
	giveUp, cancelGiveUp := context.WithTimeout(ctx, 10*time.Minute)
	defer cancelGiveUp()
	revokeReq := make([]chan chan error, len(shoppers))
	var revocationDelays []time.Duration
	var delaysMu sync.Mutex // guards revocationDelays
	var work sync.WaitGroup
	shopperErrs := make([]error, len(shoppers))
	finished := make([]chan struct{}, len(shoppers)) // closed when shopper i stops
	for i, s := range shoppers {
		revokeReq[i] = make(chan chan error, 1)
		finished[i] = make(chan struct{})
		work.Go(func() {
			defer close(finished[i])
			for {
				select {
				case <-stop:
					return
				case done := <-revokeReq[i]:
					d, err := s.revoke(giveUp, c.live())
					delaysMu.Lock()
					revocationDelays = append(revocationDelays, d)
					delaysMu.Unlock()
					done <- err
					continue
				default:
				}
				if err := s.do(giveUp, s.randomMutation(), st); err != nil {
					shopperErrs[i] = err
					return
				}
			}
		})
	}

	faults := &faultLog{counts: map[string]int{}}
	warmup := prof.step * 2
	time.Sleep(warmup)
	before := st.ackedCount()
	rate := float64(before) / warmup.Seconds()

	rng := mrand.New(mrand.NewPCG(1, uint64(time.Now().UnixNano())))
	pause := func() { time.Sleep(prof.step) }
	tracker := progress.New(float64(prof.cycles))
	t.Logf("chaos %s: %d fault cycles", prof.name, prof.cycles)
	for cycle := range prof.cycles {
		// A crash: SIGKILL, then the supervisor restarts it.
		live := c.live()
		c.crash(live[rng.IntN(len(live))])
		faults.add("SIGKILL + restart")
		pause()

		// Scale out to five; the clients learn the new addresses, and the
		// new replicas must take a fair share of the calls.
		for len(c.live()) < 5 {
			c.addReplica()
			faults.add("scale out (+1 replica)")
		}
		setReplicas(c.live())
		windowFrom := time.Now().Add(maxConnAge + maxConnAgeGrace)
		windowUntil := windowFrom.Add(2 * prof.step)
		if cycle == 0 {
			st.mu.Lock()
			st.fairnessFrom, st.fairnessUntil = windowFrom, windowUntil
			st.mu.Unlock()
		}

		// Rotate the signing key while shoppers run.
		if _, err := auth.RotateSigningKey(client.WithToken(ctx, adminToken), &authv1.RotateSigningKeyRequest{}); err != nil {
			t.Errorf("RotateSigningKey: %v", err)
		} else {
			faults.add("signing key rotation")
		}
		time.Sleep(time.Until(windowUntil))

		// Revoke three shoppers' tokens; they log in again.
		revs := map[int]chan error{}
		for _, i := range rng.Perm(len(shoppers))[:3] {
			done := make(chan error, 1)
			revokeReq[i] <- done
			revs[i] = done
		}
		for i, done := range revs {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("revocation: %v", err)
				}
				faults.add("token revocation")
			case <-finished[i]: // it stopped on an error, reported below
			}
		}

		// A graceful drain: out of the clients' lists first, then SIGTERM,
		// as Kubernetes endpoints and preStop do.
		live = c.live()
		victim := live[rng.IntN(len(live))]
		setReplicas(slices.DeleteFunc(slices.Clone(live), func(a string) bool { return a == victim }))
		c.remove(victim)
		faults.add("SIGTERM (graceful drain)")
		pause()

		// Scale in to two.
		live = c.live()
		keep := live[:2]
		setReplicas(keep)
		for _, a := range live[2:] {
			c.remove(a)
			faults.add("scale in (-1 replica)")
		}
		pause()

		// PostgreSQL becomes unreachable for the replicas (store modes
		// over PostgreSQL): cart calls get UNAVAILABLE, which the client
		// retries and the shoppers resend with the same request_id, so a
		// change whose commit went through before its reply was lost is
		// not applied twice.
		if cfg.catalogDB != nil {
			cfg.catalogDB.Disconnect()
			faults.add("database unreachable for " + prof.step.String())
			pause()
			sqldbtest.Reconnect(t, cfg.catalogDB)
			pause()
		}
		// And back to three for the next cycle.
		c.addReplica()
		setReplicas(c.live())
		faults.add("scale out (+1 replica)")
		pause()
		t.Logf("chaos %s: fault cycle %d/%d done; %s", prof.name, cycle+1, prof.cycles, tracker.Done(1))
	}
	t.Logf("chaos %s: stopping the shoppers, reading every cart back", prof.name)
	close(stop)
	work.Wait()
	attempts := st.attempts.Load() // before the read-back adds its own calls
	for _, err := range shopperErrs {
		if err != nil {
			t.Error(err)
		}
	}

	lost, doubled := checkModels(t, ctx, shoppers)

	// Print the summary table.
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s, profile %s (%d shoppers, %d fault cycles)\n", t.Name(), prof.name, prof.shoppers, prof.cycles)
	fmt.Fprintf(tw, "mutations before the first fault\t%d in %v (%.0f/s; floor %.0f/s)\n", before, warmup, rate, prof.floor)
	fmt.Fprintf(tw, "calls\t%d\n", st.calls)
	fmt.Fprintf(tw, "acknowledged mutations\t%d\n", st.acked)
	fmt.Fprintf(tw, "retries by the test (same request_id)\t%d\n", st.retries)
	fmt.Fprintf(tw, "attempts on the wire (incl. the retry policy's)\t%d (%d retried transparently)\n",
		attempts, attempts-int64(st.calls))
	codesSeen := make([]codes.Code, 0, len(st.errorsByCode))
	for code := range st.errorsByCode {
		codesSeen = append(codesSeen, code)
	}
	slices.Sort(codesSeen)
	for _, code := range codesSeen {
		fmt.Fprintf(tw, "errors: %s\t%d\n", code, st.errorsByCode[code])
	}
	fmt.Fprintf(tw, "Unauthenticated for valid tokens\t%d\n", st.unauthValid)
	kinds := make([]string, 0, len(faults.counts))
	for k := range faults.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(tw, "fault: %s\t%d\n", k, faults.counts[k])
	}
	slowest := slices.Max(append(revocationDelays, 0))
	fmt.Fprintf(tw, "revocation refused by every replica after (max)\t%v\n", slowest.Round(time.Millisecond))
	fmt.Fprintf(tw, "revocation delays, each the slowest replica's\t%v\n", roundedSorted(revocationDelays))
	fmt.Fprintf(tw, "lost updates\t%d\n", lost)
	fmt.Fprintf(tw, "doubled updates\t%d\n", doubled)
	share := fairShare(st.byPeerAfter)
	fmt.Fprintf(tw, "calls per replica after scale-out (+%v)\t%s\n", maxConnAge+maxConnAgeGrace, share)
	_ = tw.Flush()
	t.Logf("chaos summary\n%s", b.String())

	if rate < prof.floor {
		t.Errorf("throughput before the first fault %.1f/s is below the floor %.0f/s", rate, prof.floor)
	}
	if st.unauthValid > 0 {
		t.Errorf("%d calls with valid tokens were refused as Unauthenticated", st.unauthValid)
	}
	if slowest > time.Second {
		t.Errorf("a revoked token was still accepted %v after revocation (bound 1 s)", slowest)
	}
	checkFairShare(t, st.byPeerAfter)
}

// checkModels reads every shopper's cart back and fails the test for each
// line that differs from the model of the shopper's acknowledged mutations.
func checkModels(t *testing.T, ctx context.Context, shoppers []*shopper) (lost, doubled int) {
	t.Helper()
	for _, s := range shoppers {
		got, err := s.readCart(ctx)
		if err != nil {
			t.Fatalf("read cart of %s: %v", s.email, err)
		}
		for p := range mergeKeys(got, s.model) {
			switch g, w := got[p], s.model[p]; {
			case g < w:
				lost++
				t.Errorf("%s: %s quantity %d, acknowledged mutations make %d (lost update)", s.email, p, g, w)
			case g > w:
				doubled++
				t.Errorf("%s: %s quantity %d, acknowledged mutations make %d (doubled update)", s.email, p, g, w)
			}
		}
	}
	return lost, doubled
}

// checkFairShare fails unless each replica that served calls in the
// fairness window got at least half of an even share.
func checkFairShare(t *testing.T, byPeer map[string]int) {
	t.Helper()
	total := 0
	for _, n := range byPeer {
		total += n
	}
	if len(byPeer) < 5 || total == 0 {
		t.Errorf("after scale-out to 5, calls reached %d replicas: %v", len(byPeer), byPeer)
		return
	}
	even := float64(total) / float64(len(byPeer))
	for a, n := range byPeer {
		if float64(n) < even/2 {
			t.Errorf("replica %s served %d of %d calls after scale-out; an even share is %.0f", a, n, total, even)
		}
	}
}

func fairShare(byPeer map[string]int) string {
	addrs := make([]string, 0, len(byPeer))
	total := 0
	for a, n := range byPeer {
		addrs = append(addrs, a)
		total += n
	}
	sort.Strings(addrs)
	var parts []string
	for _, a := range addrs {
		parts = append(parts, fmt.Sprintf("%s=%.0f%%", a, math.Round(100*float64(byPeer[a])/float64(max(total, 1)))))
	}
	return strings.Join(parts, " ")
}

func mergeKeys(a, b map[string]int64) map[string]struct{} {
	out := map[string]struct{}{}
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

// adminToken logs in as the admin account, which authsvc created at start
// (--bootstrap-admin with its password).
func adminToken(t *testing.T, ctx context.Context, auth authv1.AuthServiceClient) string {
	t.Helper()
	shed := []codes.Code{codes.ResourceExhausted, codes.Unavailable}
	var resp *authv1.LoginResponse
	err := retryCodes(ctx, shed, func(ctx context.Context) error {
		var err error
		resp, err = auth.Login(ctx, &authv1.LoginRequest{Email: adminEmail, Password: adminPassword})
		return err
	})
	if err != nil {
		t.Fatalf("login admin: %v", err)
	}
	return resp.GetAccessToken()
}

func someProducts(t *testing.T, ctx context.Context, addr string, n int) []string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := catalogv1.NewCatalogServiceClient(conn).ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: int32(n)})
	if err != nil {
		t.Fatalf("ListProducts: %v", err)
	}
	var ids []string
	for _, p := range resp.GetProducts() {
		ids = append(ids, p.GetId())
	}
	if len(ids) < n {
		t.Fatalf("catalog has %d products, want at least %d", len(ids), n)
	}
	return ids
}

// roundedSorted returns ds sorted, each rounded to the millisecond.
func roundedSorted(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	slices.Sort(out)
	return out
}
