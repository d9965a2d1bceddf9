package catalogsvc_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// TestStoreOutage cuts the replica's connection to PostgreSQL: cart calls
// get Unavailable (which clients retry) instead of Internal, the catalog
// keeps serving from its snapshot, and once the database is back the
// mutation resent with its request_id is applied once.
func TestStoreOutage(t *testing.T) {
	c := newCluster(t, storeModes[1])
	db, viaProxy := sqldbtest.Proxy(t, c.dsn)
	c.dsn = viaProxy
	r := c.start()
	s := c.shopper(r, "outage-shopper")
	if got := s.add(espresso, 1, withRequestID("outage-1")).must(t).GetVersion(); got != 1 {
		t.Fatalf("version %d after the first add, want 1", got)
	}

	db.Disconnect()
	expect.MustCode(t, "", s.add(kenya, 2, withRequestID("outage-2")).err, codes.Unavailable)
	expect.MustCode(t, "", s.get().err, codes.Unavailable)
	if _, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: kenya}); err != nil {
		t.Fatalf("GetProduct during the outage: %v", err)
	}

	sqldbtest.Reconnect(t, db)
	var cart *catalogv1.Cart
	expect.Eventually(t, testTimeout, "the store to answer again", func() bool {
		res := s.add(kenya, 2, withRequestID("outage-2"))
		cart = res.cart
		return res.err == nil
	})
	// Resent once more: the same request, the same cart.
	again := s.add(kenya, 2, withRequestID("outage-2")).must(t)
	if cart.GetVersion() != 2 || again.GetVersion() != 2 {
		t.Fatalf("versions %d and %d after the resent add, want 2 and 2", cart.GetVersion(), again.GetVersion())
	}
	got := map[string]int64{}
	for _, l := range s.get().must(t).GetLines() {
		got[l.GetProductId()] = l.GetQuantity()
	}
	if len(got) != 2 || got[espresso] != 1 || got[kenya] != 2 {
		t.Fatalf("cart lines %v, want %s:1 and %s:2", got, espresso, kenya)
	}
}
