package abuse

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// Phase lengths besides the flood.
const (
	baselineLength = 20 * time.Second // the shopper alone
	settleLength   = 5 * time.Second  // after the flood, before the "after" readings
	// warmupCycles keeps the warm-up's churn from spending the attacker
	// address's refresh budget (a fixed window of a minute) before the
	// flood.
	warmupCycles = 2 * sessionRefreshes
)

const abusePassword = "abuse scenario password, long enough"

// attack is one run of the attacker's three kinds of traffic.
type attack struct {
	churn *churn
	watch *watcher
	forge *forger
}

// run runs the three at once until ctx ends.
func (a *attack) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.churn.run(ctx) })
	wg.Go(func() { a.watch.run(ctx) })
	wg.Go(func() { a.forge.run(ctx) })
	wg.Wait()
}

// setup is what the phases share: the system, the shopper, and what the
// attacker's process is told.
type setup struct {
	sys        *system
	shopper    *shopper
	attackerID string
	attacker   AttackerConfig
	conns      []*client.Conn
}

// during runs the attacker's process (for cycles refresh cycles at most)
// and the shopper together for d, and returns what the attacker counted
// and the shopper's latencies.
func (s *setup) during(ctx context.Context, d time.Duration, cycles int) (attackResult, *latencies, error) {
	cfg := s.attacker
	cfg.Duration, cfg.Cycles = d, cycles
	var res attackResult
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { res, err = attackFor(ctx, cfg) })
	lat := s.shopper.run(ctx, d)
	wg.Wait()
	return res, lat, err
}

// Run starts the services, runs the scenario's phases and returns the
// report. It fails only when the scenario cannot run or be measured; a
// missed goal is in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	rep := &Report{opts: opts, started: time.Now(), cpus: runtime.NumCPU()}
	fmt.Fprintf(opts.Progress, "abuse: starting authsvc and %d catalogsvc replicas\n", replicaCount)
	sys, err := startSystem(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer sys.stop(opts.Progress)
	s, err := prepare(ctx, sys)
	defer func() {
		for _, c := range s.conns {
			c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	for _, r := range sys.replicas {
		rep.replicas = append(rep.replicas, r.name)
	}

	fmt.Fprintf(opts.Progress, "abuse: warm-up, every kind of traffic for %v\n", opts.Warmup)
	if _, _, err := s.during(ctx, opts.Warmup, warmupCycles); err != nil {
		return nil, err
	}
	if rep.before, err = sys.read(ctx, s.attackerID); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "abuse: baseline, the shopper alone for %v\n", baselineLength)
	if rep.baseline = s.shopper.run(ctx, baselineLength); len(rep.baseline.ok) == 0 {
		return nil, fmt.Errorf("baseline: no GetCart of the legitimate shopper succeeded (%s)", rep.baseline.codes.String())
	}
	fmt.Fprintf(opts.Progress, "abuse: flood for %v\n", opts.Duration)
	cpu0, err := sys.cpuSeconds(ctx)
	if err != nil {
		return nil, err
	}
	if rep.attack, rep.flood, err = s.during(ctx, opts.Duration, opts.Cycles); err != nil {
		return nil, err
	}
	if rep.floodCPU, err = sys.cpuSeconds(ctx); err != nil {
		return nil, err
	}
	for i := range rep.floodCPU {
		rep.floodCPU[i] -= cpu0[i]
	}
	fmt.Fprintf(opts.Progress, "abuse: flood over; settling for %v\n", settleLength)
	pause(ctx, settleLength)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rep.after, err = sys.read(ctx, s.attackerID); err != nil {
		return nil, err
	}
	rep.took = time.Since(rep.started)
	return rep, nil
}

// prepare dials the services, registers and logs in the shopper and the
// attacker (both from legitSource, as accounts are made before an attack),
// and warms both replicas' token caches with the shopper's token. The
// returned setup's conns are to be closed even on error.
func prepare(ctx context.Context, sys *system) (*setup, error) {
	s := &setup{sys: sys}
	dial := func(src, addr string) (*client.Conn, error) {
		c, err := dialFrom(src, addr)
		if err == nil {
			s.conns = append(s.conns, c)
		}
		return c, err
	}
	authConn, err := dial(legitSource, sys.auth.proc.Spec.GRPCAddr)
	if err != nil {
		return s, err
	}
	auth := authv1.NewAuthServiceClient(authConn)
	run := rand.Text()[:8]
	shopperLogin, err := newAccount(ctx, auth, "shopper-"+run+"@abuse.tokencart.test")
	if err != nil {
		return s, err
	}
	email := "attacker-" + run + "@abuse.tokencart.test"
	attackerLogin, err := newAccount(ctx, auth, email)
	if err != nil {
		return s, err
	}
	s.attackerID = attackerLogin.GetUser().GetId()
	s.attacker = AttackerConfig{
		AuthAddr: sys.auth.proc.Spec.GRPCAddr, Email: email, Password: abusePassword,
		Tokens: []string{attackerLogin.GetAccessToken()},
	}
	s.shopper = &shopper{token: shopperLogin.GetAccessToken()}
	for _, r := range sys.replicas {
		s.attacker.Replicas = append(s.attacker.Replicas, r.proc.Spec.GRPCAddr)
		legit, err := dial(legitSource, r.proc.Spec.GRPCAddr)
		if err != nil {
			return s, err
		}
		cart := catalogv1.NewCartServiceClient(legit)
		if _, err := cart.GetCart(client.WithToken(ctx, s.shopper.token), &catalogv1.GetCartRequest{}); err != nil {
			return s, fmt.Errorf("warm %s's token cache: %w", r.name, err)
		}
		s.shopper.carts = append(s.shopper.carts, cart)
	}
	return s, nil
}

// newAccount registers email and logs it in. A password check that
// authsvc sheds (ResourceExhausted, its hashing slots busy) is retried.
func newAccount(ctx context.Context, auth authv1.AuthServiceClient, email string) (*authv1.LoginResponse, error) {
	if err := retryShed(ctx, func() error {
		_, err := auth.Register(ctx, &authv1.RegisterRequest{Email: email, Password: abusePassword})
		return err
	}); err != nil {
		return nil, fmt.Errorf("register %s: %w", email, err)
	}
	var resp *authv1.LoginResponse
	if err := retryShed(ctx, func() (err error) {
		resp, err = auth.Login(ctx, &authv1.LoginRequest{Email: email, Password: abusePassword})
		return err
	}); err != nil {
		return nil, fmt.Errorf("log in %s: %w", email, err)
	}
	return resp, nil
}

// retryShed calls f up to 20 times, 250ms apart, while it is shed.
func retryShed(ctx context.Context, f func() error) error {
	var err error
	for range 20 {
		if err = f(); status.Code(err) != codes.ResourceExhausted {
			return err
		}
		pause(ctx, 250*time.Millisecond)
	}
	return errors.Join(errors.New("still shed after 20 attempts"), err)
}
