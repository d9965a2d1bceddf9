package catalogsvc_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/client"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
)

// authsvcOutage is long enough for gRPC's default reconnection backoff
// (1 s growing by 1.6 to 120 s) to wait more than 10 s between attempts.
const authsvcOutage = 35 * time.Second

// TestBackWithinSecondsOfAuthsvc takes authsvc away for longer than
// gRPC's default backoff lets a client notice its return quickly: the
// replica, whose revocation feed goes stale meanwhile (valid tokens get
// Unavailable), accepts them again within 5 s of authsvc serving again.
func TestBackWithinSecondsOfAuthsvc(t *testing.T) {
	if testing.Short() {
		t.Skip("a 35-second outage")
	}
	t.Parallel()
	c := newCluster(t, modes[0], grpcauthtest.WithServiceCredential(authsvctest.TestServiceCredential))
	r := c.start()
	tok := c.fake.Mint(t, "returning-shopper")
	getCart := func() error {
		ctx, cancel := context.WithTimeout(client.WithToken(context.Background(), tok), 2*time.Second)
		defer cancel()
		_, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{})
		return err
	}
	if err := getCart(); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	c.fake.Stop()
	down := time.Now()
	for status.Code(getCart()) != codes.Unavailable {
		if time.Since(down) > 20*time.Second {
			t.Fatal("the replica still accepts tokens 20 s into the outage without checking revocation")
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	time.Sleep(authsvcOutage - time.Since(down)) // the outage itself
	c.fake.Restart(t)
	back := time.Now()
	var err error
	for err = getCart(); err != nil && time.Since(back) < 60*time.Second; err = getCart() {
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	took := time.Since(back)
	t.Logf("valid tokens accepted again %v after authsvc came back from a %v outage", took.Round(10*time.Millisecond), authsvcOutage)
	if err != nil || took > 5*time.Second {
		t.Errorf("valid tokens accepted again %v after authsvc came back (%v), want within 5 s", took, err)
	}
}
