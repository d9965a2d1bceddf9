package authsvc_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authtest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
)

// frozenClock is a clock that moves only when the test advances it, so
// that a throttle delay cannot run out while a slow test machine works.
type frozenClock struct{ ns atomic.Int64 }

func newFrozenClock() *frozenClock {
	c := &frozenClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *frozenClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *frozenClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestThrottleUnderAttack sends 100 wrong passwords for one account at
// once, two from each of 50 client addresses (behind a trusted proxy that
// appends the client's address to x-forwarded-for), with the production
// limits (DefaultConfig):
//
//   - per account, 5 failed logins (--login-account-limit) within 15
//     minutes (--login-throttle-window); per client address, 50
//     (--login-address-limit), so that spreading guesses over addresses
//     does not help, and one address cannot lock out many accounts
//     quickly;
//   - past a limit, every login (right password or not) is refused with
//     ResourceExhausted and a RetryInfo detail until the delay has passed:
//     1s (--login-throttle-delay) after the failure that reached the
//     limit, doubling with each further failure, at most the window;
//   - a refused login is not a guess: it neither reaches the hasher nor
//     counts as a failure;
//   - concurrent guesses all pass the first check before any of them has
//     failed, so the throttle is checked again, and each failure counted,
//     while the guess holds a hashing slot: a burst gets at most the limit
//     plus HashConcurrency-1 guesses tried per replica.
//
// The owner's right password is refused while the account is throttled,
// and another account, from an address of its own, is not affected.
func TestThrottleUnderAttack(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := newFrozenClock()
		prod := authsvc.DefaultConfig()
		s := authtest.Start(t, authtest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.LoginAccountLimit, c.LoginAddressLimit = prod.LoginAccountLimit, prod.LoginAddressLimit
			c.LoginThrottleWindow, c.LoginThrottleDelay = prod.LoginThrottleWindow, prod.LoginThrottleDelay
			c.TrustedProxyHops = 1
			c.Now = clk.Now
		}})
		cfg := s.Config
		probe := openProbe(t, dsn)
		ctx := t.Context()
		s.Register(t, "victim@example.com")
		s.Register(t, "bystander@example.com")
		login := func(addr, email, password string) error {
			ctx := metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", addr)
			_, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
			return err
		}

		const guesses, addresses = 100, 50
		errs := make([]error, guesses)
		var wg sync.WaitGroup
		for i := range guesses {
			wg.Go(func() {
				errs[i] = login(fmt.Sprintf("198.51.100.%d", i%addresses+1), "victim@example.com", fmt.Sprintf("guess-%03d", i))
			})
		}
		wg.Wait()
		tried, refused := 0, 0
		for _, err := range errs {
			switch status.Code(err) {
			case codes.Unauthenticated:
				tried++
			case codes.ResourceExhausted:
				refused++
				if d := retryDelay(t, err); d <= 0 || d > cfg.LoginThrottleWindow {
					t.Errorf("retry delay %v, want within (0, %v]", d, cfg.LoginThrottleWindow)
				}
			default:
				t.Errorf("a guess got %v, want Unauthenticated or ResourceExhausted", err)
			}
		}
		t.Logf("of %d concurrent guesses from %d addresses, %d were tried and %d refused unheard (limit %d, hash concurrency %d)",
			guesses, addresses, tried, refused, cfg.LoginAccountLimit, cfg.HashConcurrency)
		if most := cfg.LoginAccountLimit + cfg.HashConcurrency - 1; tried < cfg.LoginAccountLimit || tried > most {
			t.Errorf("%d guesses tried, want %d to %d", tried, cfg.LoginAccountLimit, most)
		}
		// Only the guesses tried count, for the account and, spread thinly,
		// for the addresses: none is near its own limit.
		if got := probe.failures(t, "account:victim@example.com"); got != tried {
			t.Errorf("account failures %d, want %d", got, tried)
		}
		if got := probe.failures(t, "address:198.51.100."); got != tried {
			t.Errorf("address failures %d, want %d", got, tried)
		}

		// The owner, with the right password, from an address of their own.
		err := login("203.0.113.1", "victim@example.com", authtest.Password)
		wantCode(t, "the right password while throttled", err, codes.ResourceExhausted)
		wait := retryDelay(t, err)
		want := cfg.LoginThrottleDelay
		for range tried - cfg.LoginAccountLimit {
			want = min(2*want, cfg.LoginThrottleWindow)
		}
		if wait <= 0 || wait > want+time.Millisecond {
			t.Errorf("retry delay %v, want at most %v (%v doubled for each failure beyond the limit)", wait, want, cfg.LoginThrottleDelay)
		}
		// Someone else, from an address of their own, is not affected.
		if err := login("203.0.113.2", "bystander@example.com", authtest.Password); err != nil {
			t.Errorf("another account from a fresh address: %v", err)
		}

		// When the delay has passed, one more guess is heard, and the next
		// delay is twice as long.
		clk.Advance(wait)
		wantCode(t, "a guess after the delay", login("198.51.100.1", "victim@example.com", "one more guess"), codes.Unauthenticated)
		err = login("203.0.113.1", "victim@example.com", authtest.Password)
		wantCode(t, "the right password after another failure", err, codes.ResourceExhausted)
		if next := retryDelay(t, err); next < 2*wait-time.Second || next > 2*wait+time.Second {
			t.Errorf("retry delay after one more failure %v, want about %v", next, 2*wait)
		}
		clk.Advance(2 * wait)
		if err := login("203.0.113.1", "victim@example.com", authtest.Password); err != nil {
			t.Fatalf("the right password after the delay: %v", err)
		}
		// A success clears the account's count.
		if got := probe.failures(t, "account:victim@example.com"); got != 0 {
			t.Errorf("account failures after a success: %d", got)
		}
	})
}
