package grpcauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/token"
)

// forge returns a token signed by a key nobody published, with a kid the
// key set has (so that it costs a signature check), unique per call.
func forge(t *testing.T, fake *grpcauthtest.Server, good string) string {
	t.Helper()
	raw := fake.Mint(t, "victim")
	parts := strings.Split(raw, ".")
	return parts[0] + "." + parts[1] + "." + strings.Split(good, ".")[2]
}

// TestGuard: in both modes, a client address that keeps failing token
// checks is refused with RESOURCE_EXHAUSTED and a RetryInfo before any
// check (no signature, no introspection call); a token already known good
// still passes; one forged token presented again and again costs a lookup,
// not the address's budget.
func TestGuard(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{grpcauth.ModeLocal, grpcauth.ModeRemote} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			fake := grpcauthtest.Start(t)
			cfg := baseConfig()
			cfg.Mode = mode
			cfg.Guard = grpcauth.GuardConfig{Failures: 10, Every: time.Hour}
			// The good token must stay cached through a thousand calls
			// however slow the machine: the test is of the guard, not the TTL.
			cfg.IntrospectCacheTTL = time.Hour
			v := startValidator(t, fake, cfg)
			ctx := context.Background()
			good := fake.Mint(t, "alice", token.RoleCustomer)
			if _, err := v.Authenticate(ctx, good); err != nil {
				t.Fatal(err)
			}

			// One forged token, a thousand times: refused each time, and
			// the address keeps its budget.
			_, introBefore, _ := fake.Calls()
			forged := forge(t, fake, good)
			for range 1000 {
				if _, err := v.Authenticate(ctx, forged); authCode(err) != codes.Unauthenticated {
					t.Fatalf("the same forged token again: code %v, want Unauthenticated", authCode(err))
				}
			}
			if _, intro, _ := fake.Calls(); mode == grpcauth.ModeRemote && intro-introBefore != 1 {
				t.Errorf("one forged token presented 1000 times cost %d introspections, want 1", intro-introBefore)
			}

			// A flood of distinct forged tokens: the budget (10, one spent
			// above) runs out, then every call is refused before a check.
			refused := 0
			for i := range 100 {
				_, err := v.Authenticate(ctx, forge(t, fake, good))
				switch authCode(err) {
				case codes.Unauthenticated:
					if refused > 0 {
						t.Fatalf("forged token %d checked after the address was refused", i)
					}
				case codes.ResourceExhausted:
					if d, ok := client.RetryDelay(err); !ok || d <= 0 {
						t.Fatalf("refusal without a RetryInfo: %v", err)
					}
					refused++
				default:
					t.Fatalf("forged token %d: %v", i, err)
				}
			}
			if checked := 100 - refused; checked != 9 {
				t.Errorf("%d of 100 forged tokens were checked, want 9 (the budget of 10 less one)", checked)
			}
			if _, intro, _ := fake.Calls(); mode == grpcauth.ModeRemote && intro-introBefore != 10 {
				t.Errorf("the flood cost %d introspections, want 10", intro-introBefore)
			}
			// The good token is cached: it does not meet the guard.
			if _, err := v.Authenticate(ctx, good); err != nil {
				t.Errorf("a cached good token from the refused address: %v", err)
			}
		})
	}
}
