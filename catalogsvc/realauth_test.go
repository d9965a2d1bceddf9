package catalogsvc_test

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/internal/expect"
)

// revocationBound is the bound on how long a replica may keep accepting a
// token revoked at authsvc.
const revocationBound = time.Second

// TestRealAuthsvcReplicas checks replicated carts end to end with a real
// authsvc (on TCP, its production interceptor chain, tokens it minted at
// login) and three catalogsvc replicas per cart mode: a shopper adds
// through replica A, reads through B, changes through C, the cart right at
// every step; then the shopper logs out and every replica refuses the token
// within revocationBound.
func TestRealAuthsvcReplicas(t *testing.T) {
	t.Parallel()
	auth := authsvctest.Start(t, authsvctest.Options{})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newClusterAt(t, m, auth.GRPCAddr)
			a, b, cc := c.start(), c.start(), c.start()
			replicas := []*replica{a, b, cc}
			user, raw := auth.NewCustomer(t)
			s := c.shopperWithToken(a, raw)

			checkCart(t, a, s.via(a).add(espresso, 2).must(t), 1, line{espresso, 2})
			checkCart(t, a, s.via(b).get().must(t), 1, line{espresso, 2})
			checkCart(t, a, s.via(cc).add(press, 1, withRequestID("real-1")).must(t), 2, line{espresso, 2}, line{press, 1})
			checkCart(t, a, s.via(a).add(press, 1, withRequestID("real-1")).must(t), 2, line{espresso, 2}, line{press, 1})
			checkCart(t, a, s.via(b).set(espresso, 5, expecting(2)).must(t), 3, line{espresso, 5}, line{press, 1})
			expect.MustCode(t, "", s.via(cc).remove(press, expecting(2)).err, codes.Aborted)
			checkCart(t, a, s.via(cc).remove(press).must(t), 4, line{espresso, 5})
			checkCart(t, a, s.via(a).get().must(t), 4, line{espresso, 5})
			checkCart(t, a, s.via(b).get().must(t), 4, line{espresso, 5})

			// Every replica has verified (and cached) the token by now.
			for _, r := range replicas {
				s.via(r).get().must(t)
			}
			start := time.Now()
			if _, err := auth.Client.Logout(authsvctest.WithToken(testContext(t), raw), &authv1.LogoutRequest{}); err != nil {
				t.Fatalf("Logout: %v", err)
			}
			delays := make([]time.Duration, len(replicas))
			var wg sync.WaitGroup
			for i, r := range replicas {
				wg.Go(func() {
					deadline := start.Add(testTimeout)
					for time.Now().Before(deadline) {
						_, err := r.carts.GetCart(s.ctx, &catalogv1.GetCartRequest{CartState: s.state})
						if status.Code(err) == codes.Unauthenticated {
							delays[i] = time.Since(start)
							return
						}
						time.Sleep(2 * time.Millisecond) // polling interval
					}
					delays[i] = -1
				})
			}
			wg.Wait()
			for i, d := range delays {
				switch {
				case d < 0:
					t.Errorf("replica %d still accepts the revoked token after %v", i, testTimeout)
				case d > revocationBound:
					t.Errorf("replica %d refused the revoked token after %v, want within %v", i, d, revocationBound)
				default:
					t.Logf("%s: replica %d refuses the logged-out token %v after Logout returned", m.name, i, d)
				}
			}
			// The cart is still there for the shopper's next login.
			fresh := c.shopperWithToken(b, auth.Login(t, user.GetEmail()).GetAccessToken())
			fresh.state = s.state
			checkCart(t, a, fresh.get().must(t), 4, line{espresso, 5})
		})
	}
}
