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
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
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

// TestThrottleUnderAttack sends 60 wrong passwords for one account at
// once, two from each of 30 client addresses (behind a trusted proxy that
// appends the client's address to x-forwarded-for), with the production
// limits (DefaultConfig) but for the account's total, 12 instead of 50 so
// that the test hashes a few dozen passwords, not hundreds:
//
//   - per account and address, 5 failed logins (--login-account-limit);
//     per account from all addresses, 12 here (--login-account-total-limit),
//     which does not apply to addresses that logged in to the account
//     before; per client address, 50 (--login-address-limit); all within
//     15 minutes (--login-throttle-window);
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
// The owner, from an address that logged in before, is not affected; from
// an address never used, the owner is refused like the attackers; another
// account is not affected.
func TestThrottleUnderAttack(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := newFrozenClock()
		prod := authsvc.DefaultConfig()
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.LoginAccountLimit, c.LoginAccountTotalLimit, c.LoginAddressLimit = prod.LoginAccountLimit, 12, prod.LoginAddressLimit
			c.LoginThrottleWindow, c.LoginThrottleDelay = prod.LoginThrottleWindow, prod.LoginThrottleDelay
			// Every guess waits its turn at the hasher, however slow the
			// machine: a guess refused for want of a slot was not tried.
			c.HashQueueTimeout = 5 * time.Minute
			c.Guard.TrustedProxyHops = 1
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
		const home, fresh = "203.0.113.1", "203.0.113.9"
		if err := login(home, "victim@example.com", authsvctest.Password); err != nil {
			t.Fatalf("the owner's first login: %v", err)
		}

		const guesses, addresses = 60, 30
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
		t.Logf("of %d concurrent guesses from %d addresses, %d were tried and %d refused unheard (total limit %d, hash concurrency %d)",
			guesses, addresses, tried, refused, cfg.LoginAccountTotalLimit, cfg.HashConcurrency)
		if most := cfg.LoginAccountTotalLimit + cfg.HashConcurrency - 1; tried < cfg.LoginAccountTotalLimit || tried > most {
			t.Errorf("%d guesses tried, want %d to %d", tried, cfg.LoginAccountTotalLimit, most)
		}
		// Only the guesses tried count: for the account, and spread thinly
		// over the addresses and the account at each.
		for _, key := range []string{"account:victim@example.com", "account-address:victim@example.com|198.51.100.", "address:198.51.100."} {
			if got := probe.failures(t, key); got != tried {
				t.Errorf("failures under %s: %d, want %d", key, got, tried)
			}
		}

		// The owner, with the right password, from the address used before:
		// the strangers' guesses do not lock the owner out.
		if err := login(home, "victim@example.com", authsvctest.Password); err != nil {
			t.Errorf("the owner from a known address while the account is under attack: %v", err)
		}
		// From an address never used for it, the owner is throttled as the
		// attackers are.
		err := login(fresh, "victim@example.com", authsvctest.Password)
		expect.Code(t, "the right password from a fresh address", err, codes.ResourceExhausted)
		wait := retryDelay(t, err)
		want := cfg.LoginThrottleDelay
		for range tried - cfg.LoginAccountTotalLimit {
			want = min(2*want, cfg.LoginThrottleWindow)
		}
		if wait <= 0 || wait > want+time.Millisecond {
			t.Errorf("retry delay %v, want at most %v (%v doubled for each failure beyond the limit)", wait, want, cfg.LoginThrottleDelay)
		}
		// Someone else, from an address of their own, is not affected.
		if err := login("203.0.113.2", "bystander@example.com", authsvctest.Password); err != nil {
			t.Errorf("another account from a fresh address: %v", err)
		}

		// When the delay has passed, one more guess is heard, and the next
		// delay is twice as long.
		clk.Advance(wait)
		expect.Code(t, "a guess after the delay", login("198.51.100.1", "victim@example.com", "one more guess"), codes.Unauthenticated)
		err = login(fresh, "victim@example.com", authsvctest.Password)
		expect.Code(t, "the right password after another failure", err, codes.ResourceExhausted)
		if next := retryDelay(t, err); next < 2*wait-time.Second || next > 2*wait+time.Second {
			t.Errorf("retry delay after one more failure %v, want about %v", next, 2*wait)
		}
		clk.Advance(2 * wait)
		if err := login(fresh, "victim@example.com", authsvctest.Password); err != nil {
			t.Fatalf("the right password after the delay: %v", err)
		}
	})
}

// TestStrangerCannotLockOut: a stranger's wrong guesses, from the
// stranger's address, delay that address only; the owner, from any other
// address, logs in. Unknown emails and wrong passwords look alike
// throughout.
func TestStrangerCannotLockOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := newFrozenClock()
		prod := authsvc.DefaultConfig()
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.LoginAccountLimit, c.LoginAccountTotalLimit, c.LoginAddressLimit = prod.LoginAccountLimit, prod.LoginAccountTotalLimit, prod.LoginAddressLimit
			c.Guard.TrustedProxyHops = 1
			c.Now = clk.Now
		}})
		login := func(addr, email, password string) error {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "x-forwarded-for", addr)
			_, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
			return err
		}
		s.Register(t, "owner@example.com")
		const stranger = "198.51.100.66"
		for i := range prod.LoginAccountLimit {
			expect.Code(t, fmt.Sprint("stranger's guess ", i), login(stranger, "owner@example.com", "wrong password"), codes.Unauthenticated)
			expect.Code(t, fmt.Sprint("stranger's guess at an unknown email ", i), login(stranger, "nobody@example.com", "wrong password"), codes.Unauthenticated)
		}
		expect.Code(t, "the stranger after the limit", login(stranger, "owner@example.com", authsvctest.Password), codes.ResourceExhausted)
		expect.Code(t, "the stranger at the unknown email after the limit", login(stranger, "nobody@example.com", "x"), codes.ResourceExhausted)
		if err := login("203.0.113.7", "owner@example.com", authsvctest.Password); err != nil {
			t.Errorf("the owner, from an address the owner never used, after a stranger's guesses: %v", err)
		}
	})
}
