package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	grpcstats "google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

const (
	adminEmail    = "admin@e2e.tokencart.test"
	adminPassword = "admin password for e2e"
	shopperPass   = "shopper password for e2e"
)

// stats are what every shopper adds to during a run.
type stats struct {
	mu            sync.Mutex // guards every field
	calls         int
	retries       int
	errorsByCode  map[codes.Code]int
	unauthValid   int // Unauthenticated answers to tokens nobody revoked
	byPeer        map[string]int
	byPeerAfter   map[string]int // calls per replica inside the fairness window
	fairnessFrom  time.Time
	fairnessUntil time.Time
	acked         int
	attempts      atomic.Int64 // every attempt on the wire, transparent retries included
}

// attemptCounter counts the client's attempts, so that the retries the
// service config's retry policy made out of sight show in the summary.
type attemptCounter struct{ st *stats }

func (a attemptCounter) TagRPC(ctx context.Context, _ *grpcstats.RPCTagInfo) context.Context {
	return ctx
}

func (a attemptCounter) HandleRPC(_ context.Context, s grpcstats.RPCStats) {
	if b, ok := s.(*grpcstats.Begin); ok && b.IsClient() {
		a.st.attempts.Add(1)
	}
}

func (a attemptCounter) TagConn(ctx context.Context, _ *grpcstats.ConnTagInfo) context.Context {
	return ctx
}

func (a attemptCounter) HandleConn(context.Context, grpcstats.ConnStats) {}

func newStats() *stats {
	return &stats{errorsByCode: map[codes.Code]int{}, byPeer: map[string]int{}, byPeerAfter: map[string]int{}}
}

func (s *stats) call(p *peer.Peer, err error, retried bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if retried {
		s.retries++
	}
	if err != nil {
		s.errorsByCode[status.Code(err)]++
		return
	}
	s.acked++
	if p != nil && p.Addr != nil {
		a := p.Addr.String()
		s.byPeer[a]++
		if now := time.Now(); !s.fairnessFrom.IsZero() && now.After(s.fairnessFrom) && now.Before(s.fairnessUntil) {
			s.byPeerAfter[a]++
		}
	}
}

func (s *stats) unauthValidCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthValid
}

func (s *stats) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// shopper is one account issuing random cart mutations through the
// round-robin client, keeping a model of what its acknowledged mutations
// must have made of the cart.
type shopper struct {
	email    string
	auth     authv1.AuthServiceClient
	conn     *client.Conn
	cart     catalogv1.CartServiceClient
	products []string
	rng      *rand.Rand

	mu        sync.Mutex // guards token and revoked
	token     string
	revokedAt map[string]time.Time

	model     map[string]int64 // product -> quantity
	cartState []byte           // request-carried mode
}

func newShopper(ctx context.Context, i int, authConn *grpc.ClientConn, catalogAddrs []string, products []string, st *stats) (*shopper, error) {
	conn, err := client.Dial(strings.Join(catalogAddrs, ","), client.Options{
		CallTimeout: 3 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithStatsHandler(attemptCounter{st})},
	})
	if err != nil {
		return nil, err
	}
	s := &shopper{
		email:     fmt.Sprintf("shopper-%02d-%d@e2e.tokencart.test", i, rand.Int64()),
		auth:      authv1.NewAuthServiceClient(authConn),
		conn:      conn,
		cart:      catalogv1.NewCartServiceClient(conn),
		products:  products,
		rng:       rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
		revokedAt: map[string]time.Time{},
		model:     map[string]int64{},
	}
	// Registration is retried only on answers that say it was not applied:
	// authsvc bounds concurrent password hashing and sheds the excess.
	err = retryCodes(ctx, []codes.Code{codes.ResourceExhausted, codes.Unavailable}, func(ctx context.Context) error {
		_, err := s.auth.Register(ctx, &authv1.RegisterRequest{Email: s.email, Password: shopperPass})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", s.email, err)
	}
	if err := s.login(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *shopper) login(ctx context.Context) error {
	var resp *authv1.LoginResponse
	err := retryCodes(ctx, []codes.Code{codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded}, func(ctx context.Context) error {
		var err error
		resp, err = s.auth.Login(ctx, &authv1.LoginRequest{Email: s.email, Password: shopperPass})
		return err
	})
	if err != nil {
		return fmt.Errorf("login %s: %w", s.email, err)
	}
	s.mu.Lock()
	s.token = resp.GetAccessToken()
	s.mu.Unlock()
	return nil
}

func (s *shopper) currentToken() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, revoked := s.revokedAt[s.token]
	return s.token, revoked
}

// mutation is one cart change: how to send it and what it does to the
// model once acknowledged.
type mutation struct {
	name  string
	send  func(ctx context.Context, opts ...grpc.CallOption) (cartState []byte, err error)
	apply func(model map[string]int64)
}

func (s *shopper) randomMutation() mutation {
	p := s.products[s.rng.IntN(len(s.products))]
	q := int64(1 + s.rng.IntN(3))
	id := client.NewRequestID()
	state := s.cartState
	switch r := s.rng.IntN(20); {
	case r < 12:
		return mutation{"AddItem", func(ctx context.Context, o ...grpc.CallOption) ([]byte, error) {
			resp, err := s.cart.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: p, Quantity: q, RequestId: id, CartState: state}, o...)
			return resp.GetCartState(), err
		}, func(m map[string]int64) { m[p] += q }}
	case r < 16:
		return mutation{"SetItemQuantity", func(ctx context.Context, o ...grpc.CallOption) ([]byte, error) {
			resp, err := s.cart.SetItemQuantity(ctx, &catalogv1.SetItemQuantityRequest{ProductId: p, Quantity: q, RequestId: id, CartState: state}, o...)
			return resp.GetCartState(), err
		}, func(m map[string]int64) { m[p] = q }}
	case r < 19:
		return mutation{"RemoveItem", func(ctx context.Context, o ...grpc.CallOption) ([]byte, error) {
			resp, err := s.cart.RemoveItem(ctx, &catalogv1.RemoveItemRequest{ProductId: p, RequestId: id, CartState: state}, o...)
			return resp.GetCartState(), err
		}, func(m map[string]int64) { delete(m, p) }}
	default:
		return mutation{"ClearCart", func(ctx context.Context, o ...grpc.CallOption) ([]byte, error) {
			resp, err := s.cart.ClearCart(ctx, &catalogv1.ClearCartRequest{RequestId: id, CartState: state}, o...)
			return resp.GetCartState(), err
		}, func(m map[string]int64) { clear(m) }}
	}
}

// do sends m until it is acknowledged, resending the very same request
// (same request_id, same cart_state) after Unavailable or DeadlineExceeded,
// and with a fresh token after the shopper's token was revoked. It returns
// an error only for an answer that no retry may fix, or when giveUp ends.
func (s *shopper) do(giveUp context.Context, m mutation, st *stats) error {
	retried := false
	for {
		tok, revoked := s.currentToken()
		ctx, cancel := context.WithTimeout(client.WithToken(giveUp, tok), 3*time.Second)
		var p peer.Peer
		state, err := m.send(ctx, grpc.Peer(&p))
		cancel()
		st.call(&p, err, retried)
		switch code := status.Code(err); {
		case err == nil:
			m.apply(s.model)
			s.cartState = state
			return nil
		case code == codes.Unavailable || code == codes.DeadlineExceeded:
		case code == codes.ResourceExhausted:
			// The per-user rate limit: the call was not applied; wait as
			// told (a whole second at most) and send it again.
			time.Sleep(min(retryAfter(err), time.Second))
		case code == codes.Unauthenticated:
			if !revoked {
				st.mu.Lock()
				st.unauthValid++
				st.mu.Unlock()
			}
			if err := s.login(giveUp); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s %s: %w", s.email, m.name, err)
		}
		if giveUp.Err() != nil {
			return fmt.Errorf("%s %s: gave up: %w", s.email, m.name, err)
		}
		retried = true
		time.Sleep(time.Duration(20+s.rng.IntN(80)) * time.Millisecond)
	}
}

// readCart returns the cart as the service holds it.
func (s *shopper) readCart(ctx context.Context) (map[string]int64, error) {
	var resp *catalogv1.GetCartResponse
	err := retryCodes(ctx, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, func(ctx context.Context) error {
		tok, _ := s.currentToken()
		var err error
		resp, err = s.cart.GetCart(client.WithToken(ctx, tok), &catalogv1.GetCartRequest{CartState: s.cartState})
		return err
	})
	if err != nil {
		return nil, err
	}
	got := map[string]int64{}
	for _, l := range resp.GetCart().GetLines() {
		got[l.GetProductId()] = l.GetQuantity()
	}
	return got, nil
}

// revoke logs the shopper out and measures how long until every replica
// refuses the old token. Connections to every replica are made, and shown
// to accept the token, before the logout; after it all replicas are polled
// at once, so each figure is that replica's own delay. It returns the
// slowest replica's delay.
func (s *shopper) revoke(ctx context.Context, replicas []string) (time.Duration, error) {
	old, _ := s.currentToken()
	type probe struct {
		addr string
		conn *grpc.ClientConn
	}
	var probes []probe
	defer func() {
		for _, p := range probes {
			p.conn.Close()
		}
	}()
	for _, addr := range replicas {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return 0, err
		}
		probes = append(probes, probe{addr, conn})
		cctx, cancel := context.WithTimeout(client.WithToken(ctx, old), 5*time.Second)
		_, err = catalogv1.NewCartServiceClient(conn).GetCart(cctx, &catalogv1.GetCartRequest{CartState: s.cartState})
		cancel()
		if err != nil && status.Code(err) != codes.Unavailable {
			return 0, fmt.Errorf("replica %s before the logout: %w", addr, err)
		}
	}
	if _, err := s.auth.Logout(client.WithToken(ctx, old), &authv1.LogoutRequest{}); err != nil {
		return 0, fmt.Errorf("logout: %w", err)
	}
	start := time.Now()
	s.mu.Lock()
	s.revokedAt[old] = start
	s.mu.Unlock()
	delays := make([]time.Duration, len(probes))
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() { delays[i], errs[i] = refusedAfter(ctx, p.addr, p.conn, old, start) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return slices.Max(append(delays, 0)), s.login(ctx)
}

// refusedAfter polls one replica with a revoked token until it is refused,
// and returns how long after start that was. A replica that is down
// (killed by the chaos) is skipped. The poll is an AddItem that fails
// validation: it passes the token check and the rate limiter and then
// stops, touching no store, so a slow store (SQLite under the shoppers'
// writes) cannot hold a poll and delay the next one; the figure is the
// token check's.
func refusedAfter(ctx context.Context, addr string, conn *grpc.ClientConn, tok string, start time.Time) (time.Duration, error) {
	cart := catalogv1.NewCartServiceClient(conn)
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(client.WithToken(ctx, tok), time.Second)
		_, err := cart.AddItem(cctx, &catalogv1.AddItemRequest{ProductId: "probe", Quantity: 0})
		cancel()
		switch status.Code(err) {
		case codes.Unauthenticated:
			return time.Since(start), nil
		case codes.Unavailable:
			return 0, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("replica %s still accepts a token revoked %v ago", addr, time.Since(start).Round(time.Millisecond))
}

// retryAfter reads the RetryInfo of a rate-limited call, 100 ms when there
// is none.
func retryAfter(err error) time.Duration {
	if d, ok := client.RetryDelay(err); ok {
		return d
	}
	return 100 * time.Millisecond
}

// retryCodes calls f until it returns an error whose code is not in
// retryable, or ctx ends.
func retryCodes(ctx context.Context, retryable []codes.Code, f func(context.Context) error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(cctx)
		cancel()
		if !slices.Contains(retryable, status.Code(err)) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
	}
}
