package abuse

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/client"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// The legitimate shopper: shopperCallers callers, each calling GetCart
// every shopperInterval through one replica (the callers alternate
// replicas). Paced rather than closed-loop so that the shopper stays under
// catalogsvc's default per-user limit (50 calls/s per replica): 4 × 20/s is
// 40 calls/s per replica.
const (
	shopperCallers  = 4
	shopperInterval = 50 * time.Millisecond
)

// shopper is the legitimate user, on legitSource, with a live token.
type shopper struct {
	carts []catalogv1.CartServiceClient // one per replica
	token string
}

// latencies is what one run of the shopper measured.
type latencies struct {
	ok    []time.Duration // latency of each successful call, sorted
	codes codeCounts
}

// run calls GetCart from every caller for d and returns the latencies.
func (s *shopper) run(ctx context.Context, d time.Duration) *latencies {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := &latencies{}
	var mu sync.Mutex // guards res.ok
	var wg sync.WaitGroup
	for i := range shopperCallers {
		cart := s.carts[i%len(s.carts)]
		wg.Go(func() {
			mine := s.call(ctx, cart, &res.codes)
			mu.Lock()
			res.ok = append(res.ok, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(res.ok)
	return res
}

// call is one caller: GetCart through cart at every tick until ctx ends.
// It counts every outcome in counts and returns the successful latencies.
func (s *shopper) call(ctx context.Context, cart catalogv1.CartServiceClient, counts *codeCounts) []time.Duration {
	var mine []time.Duration
	tick := time.NewTicker(shopperInterval)
	defer tick.Stop()
	for {
		t0 := time.Now()
		_, err := cart.GetCart(client.WithToken(ctx, s.token), &catalogv1.GetCartRequest{})
		took := time.Since(t0)
		if ended(ctx) {
			return mine // the window closed during the call: not a result
		}
		if counts.add(err) == codes.OK {
			mine = append(mine, took)
		}
		select {
		case <-ctx.Done():
			return mine
		case <-tick.C:
		}
	}
}

// quantile returns the q-quantile (0 < q ≤ 1) of the successful calls, by
// nearest rank; 0 when there were none.
func (l *latencies) quantile(q float64) time.Duration {
	if len(l.ok) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(l.ok)))) - 1
	return l.ok[min(max(i, 0), len(l.ok)-1)]
}
