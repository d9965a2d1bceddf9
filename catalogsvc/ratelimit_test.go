package catalogsvc_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/internal/ratelimit"
)

// TestPerUserRateLimit: on a replica allowing each caller 1 call a second
// with bursts of 5, a user who floods it is refused with ResourceExhausted
// (and a retry-after header), and so is an anonymous client flooding a
// public method, while another user, on the same address, keeps their
// whole burst. Health checks are never limited. The figures are tiny so
// that the outcome depends on counts, not on how fast the test runs: the
// other user makes exactly burst calls, which no refill is needed for.
func TestPerUserRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 5
	c := newCluster(t, modes[2]) // request mode: calls cost no store
	r := c.start(func(cfg *catalogsvc.Config) {
		cfg.RateLimit, cfg.RateBurst, cfg.RateLimitCallers = 1, burst, 64
	})
	flooder, other := c.shopper(r, "flooder"), c.shopper(r, "patient")
	anonymous := testContext(t)

	// floodUntilLimited calls until refused, and returns the refusal's
	// retry-after header.
	floodUntilLimited := func(who string, call func(...grpc.CallOption) error) string {
		t.Helper()
		for i := range 10 * burst {
			var md metadata.MD
			err := call(grpc.Header(&md))
			switch status.Code(err) {
			case codes.OK:
			case codes.ResourceExhausted:
				t.Logf("%s refused after %d calls: %v", who, i, status.Convert(err).Message())
				if got := md.Get(ratelimit.RetryAfterHeader); len(got) == 1 {
					return got[0]
				}
				t.Fatalf("%s: refusal without one %s header: %v", who, ratelimit.RetryAfterHeader, md)
			default:
				t.Fatalf("%s: call %d: %v", who, i, err)
			}
		}
		t.Fatalf("%s: %d calls, none refused", who, 10*burst)
		return ""
	}
	retry := floodUntilLimited("anonymous ListProducts", func(o ...grpc.CallOption) error {
		_, err := r.catalog.ListProducts(anonymous, &catalogv1.ListProductsRequest{PageSize: 1}, o...)
		return err
	})
	if n, err := strconv.Atoi(retry); err != nil || n < 1 {
		t.Errorf("retry-after %q, want a whole number of seconds ≥ 1", retry)
	}
	floodUntilLimited("flooder GetCart", func(o ...grpc.CallOption) error {
		_, err := r.carts.GetCart(flooder.ctx, &catalogv1.GetCartRequest{}, o...)
		return err
	})

	// The flood goes on while the other user shops.
	stop := make(chan struct{})
	var refused atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := r.carts.AddItem(flooder.ctx, &catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1})
			if status.Code(err) == codes.ResourceExhausted {
				refused.Add(1)
			}
		}
	})
	// (checkCart would price the cart through public calls, which this
	// address has used up.)
	if got := other.add(kenya, 1).must(t); got.GetVersion() != 1 || len(got.GetLines()) != 1 || got.GetLines()[0].GetQuantity() != 1 {
		t.Errorf("other user's cart: %v", got)
	}
	for range burst - 1 {
		other.get().must(t)
	}
	// Probes from the limited address still get an answer.
	for range 2 * burst {
		if _, err := healthpb.NewHealthClient(r.conn).Check(anonymous, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health check from a rate-limited address: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if refused.Load() == 0 {
		t.Error("the flood went on unrefused")
	}
	t.Logf("flooder refused %d more times while the other user made %d calls", refused.Load(), burst)
}
