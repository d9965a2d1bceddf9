package catalogsvc_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// TestEveryMethodPublicOrAuthenticated walks every method of the catalog
// API on a real server: a method missing from PublicMethods must refuse a
// call without a token (or with a bad one), and a public one must not ask
// for one. A method added to the protos without a decision fails here.
func TestEveryMethodPublicOrAuthenticated(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	files := []protoreflect.FileDescriptor{
		catalogv1.File_tokencart_catalog_v1_catalog_proto,
		catalogv1.File_tokencart_catalog_v1_cart_proto,
	}
	n := 0
	for _, f := range files {
		for i := range f.Services().Len() {
			svc := f.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				full := "/" + string(svc.FullName()) + "/" + string(m.Name())
				public := slices.Contains(catalogsvc.PublicMethods, full)
				n++
				t.Run(string(svc.Name())+"."+string(m.Name()), func(t *testing.T) {
					for _, tok := range []string{"", "not-a-token"} {
						ctx := testContext(t)
						if tok != "" {
							ctx = client.WithToken(ctx, tok)
						}
						req := dynamicpb.NewMessage(m.Input())
						resp := dynamicpb.NewMessage(m.Output())
						err := r.conn.Invoke(ctx, full, req, resp)
						got := status.Code(err)
						switch {
						case public && got == codes.Unauthenticated:
							t.Errorf("public method asked for a token (token %q): %v", tok, err)
						case !public && got != codes.Unauthenticated:
							t.Errorf("token %q: code %v, want Unauthenticated", tok, got)
						}
					}
				})
			}
		}
	}
	if n != 10 {
		t.Errorf("walked %d methods, want the 10 of the API", n)
	}
}

func TestAdminOnlyCatalogWrites(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	customer := client.WithToken(testContext(t), c.fake.Mint(t, "cust", token.RoleCustomer))
	noRoles := client.WithToken(testContext(t), c.fake.Mint(t, "nobody"))
	anonymous := testContext(t)
	admin := client.WithToken(testContext(t), c.fake.Mint(t, "boss", token.RoleAdmin))
	p := &catalogv1.Product{Id: "admin-test", Name: "Admin test", Category: "test",
		Price: &catalogv1.Money{CurrencyCode: "EUR", Units: 1}}
	tests := []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"anonymous", anonymous, codes.Unauthenticated},
		{"customer", customer, codes.PermissionDenied},
		{"no roles", noRoles, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.catalog.UpsertProduct(tt.ctx, &catalogv1.UpsertProductRequest{Product: p})
			expect.MustCode(t, "", err, tt.want)
			_, err = r.catalog.DeleteProduct(tt.ctx, &catalogv1.DeleteProductRequest{ProductId: espresso})
			expect.MustCode(t, "", err, tt.want)
			_, err = r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: p.Id})
			expect.MustCode(t, "", err, codes.NotFound)
			_, err = r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: espresso})
			expect.MustCode(t, "", err, codes.OK)
		})
	}
	if _, err := r.catalog.UpsertProduct(admin, &catalogv1.UpsertProductRequest{Product: p}); err != nil {
		t.Fatalf("admin upsert: %v", err)
	}
	if _, err := r.catalog.DeleteProduct(admin, &catalogv1.DeleteProductRequest{ProductId: p.Id}); err != nil {
		t.Fatalf("admin delete: %v", err)
	}
	_, err := r.catalog.DeleteProduct(admin, &catalogv1.DeleteProductRequest{ProductId: p.Id})
	expect.MustCode(t, "", err, codes.NotFound)
}

// TestRevokedTokenRefusedEverywhere revokes a token at (fake) authsvc and
// measures how long each of three replicas, all of which had it cached,
// keeps accepting it. The goal is under a second.
func TestRevokedTokenRefusedEverywhere(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	replicas := []*replica{c.start(), c.start(), c.start()}
	raw := c.fake.Mint(t, "leaker", token.RoleCustomer)
	ctx := client.WithToken(testContext(t), raw)
	for _, r := range replicas {
		if _, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	c.fake.Revoke(t, raw)
	var worst time.Duration
	for i, r := range replicas {
		expect.Eventually(t, testTimeout, "revocation", func() bool {
			_, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{})
			return status.Code(err) == codes.Unauthenticated
		})
		d := time.Since(start)
		worst = max(worst, d)
		t.Logf("replica %d refuses the revoked token %v after the revocation", i, d)
	}
	if worst > time.Second {
		t.Errorf("revocation took %v to reach every replica, want under 1s", worst)
	}
	// Another token of the same user still works.
	fresh := client.WithToken(testContext(t), c.fake.Mint(t, "leaker", token.RoleCustomer))
	if _, err := replicas[0].carts.GetCart(fresh, &catalogv1.GetCartRequest{}); err != nil {
		t.Errorf("fresh token: %v", err)
	}
}

// TestStaleRevocationFeed cuts the revocation feed beyond the staleness
// bound: under neither policy does a replica accept a token it cannot
// check.
func TestStaleRevocationFeed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy   grpcauth.StalePolicy
		wantGood codes.Code
	}{
		{grpcauth.StaleRefuse, codes.Unavailable},
		{grpcauth.StaleIntrospect, codes.OK},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, modes[0])
			r := c.start(func(cfg *catalogsvc.Config) {
				cfg.Auth.StalePolicy = tt.policy
				cfg.Auth.RevocationStaleness = 500 * time.Millisecond
			})
			good := client.WithToken(testContext(t), c.fake.Mint(t, "good"))
			revokedRaw := c.fake.Mint(t, "bad")
			revoked := client.WithToken(testContext(t), revokedRaw)
			for _, ctx := range []context.Context{good, revoked} {
				if _, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{}); err != nil {
					t.Fatal(err)
				}
			}
			cut := time.Now()
			c.fake.SetFeedDown(true)
			c.fake.Revoke(t, revokedRaw) // published while the feed is down
			expect.Eventually(t, testTimeout, "staleness", func() bool {
				_, err := r.carts.GetCart(good, &catalogv1.GetCartRequest{})
				return status.Code(err) == tt.wantGood && r.auth.Status().Stale
			})
			t.Logf("%s: stale after %v (bound 500ms)", tt.policy, time.Since(cut))
			_, err := r.carts.GetCart(revoked, &catalogv1.GetCartRequest{})
			if status.Code(err) == codes.OK {
				t.Error("token revoked during the outage accepted")
			}
			// Public reads do not depend on the feed.
			if _, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: espresso}); err != nil {
				t.Errorf("public read while stale: %v", err)
			}
			if tt.policy == grpcauth.StaleIntrospect {
				c.fake.SetIntrospectDown(true)
				other := client.WithToken(testContext(t), c.fake.Mint(t, "other"))
				_, err := r.carts.GetCart(other, &catalogv1.GetCartRequest{})
				expect.MustCode(t, "", err, codes.Unavailable)
				c.fake.SetIntrospectDown(false)
			}
			c.fake.SetFeedDown(false)
			expect.Eventually(t, testTimeout, "recovery", func() bool {
				_, err := r.carts.GetCart(good, &catalogv1.GetCartRequest{})
				return err == nil
			})
			_, err = r.carts.GetCart(revoked, &catalogv1.GetCartRequest{})
			expect.MustCode(t, "", err, codes.Unauthenticated)
		})
	}
}

// TestReadinessWaitsForKeySet: a replica reports NOT_SERVING until it has
// authsvc's key set, then SERVING.
func TestReadinessWaitsForKeySet(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	c.fake.SetKeySetDown(true)
	r := c.startWith(false)
	health := healthpb.NewHealthClient(r.conn)
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := health.Check(testContext(t), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	if got := check(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("without a key set: %v, want NOT_SERVING", got)
	}
	// Authenticated calls cannot succeed meanwhile; public ones can.
	_, err := r.carts.GetCart(client.WithToken(testContext(t), c.fake.Mint(t, "early")), &catalogv1.GetCartRequest{})
	expect.MustCode(t, "", err, codes.Unauthenticated)
	c.fake.SetKeySetDown(false)
	expect.Eventually(t, testTimeout, "SERVING", func() bool { return check() == healthpb.HealthCheckResponse_SERVING })
}

// TestKeyRotation: a token signed with a key authsvc has just published is
// accepted at once (an unknown kid triggers one refresh); a key withdrawn
// is refused once the replica refreshes.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start(func(cfg *catalogsvc.Config) { cfg.Auth.KeySetRefresh = 200 * time.Millisecond })
	c.fake.RotateKey(t)
	first := c.fake.Mint(t, "u")
	ctx := client.WithToken(testContext(t), first)
	if _, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{}); err != nil {
		t.Fatalf("token of a just-published key: %v", err)
	}
	kid, err := token.KeyID(first)
	if err != nil {
		t.Fatal(err)
	}
	c.fake.RotateKey(t)
	c.fake.Withdraw(kid)
	expect.Eventually(t, testTimeout, "withdrawn key refused", func() bool {
		_, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{})
		return status.Code(err) == codes.Unauthenticated
	})
}

// TestRemoteMode runs the cart through a replica that introspects every
// token, with and without its cache.
func TestRemoteMode(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{0, time.Second} {
		t.Run(ttl.String(), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, modes[0])
			r := c.start(func(cfg *catalogsvc.Config) {
				cfg.Auth.Mode = grpcauth.ModeRemote
				cfg.Auth.IntrospectCacheTTL = ttl
			})
			raw := c.fake.Mint(t, "remote-user")
			s := c.shopper(r, "remote-user")
			s.ctx = client.WithToken(testContext(t), raw)
			checkCart(t, r, s.add(espresso, 1).must(t), 1, line{espresso, 1})
			checkCart(t, r, s.get().must(t), 1, line{espresso, 1})
			c.fake.Revoke(t, raw)
			expect.Eventually(t, testTimeout, "revocation", func() bool { return status.Code(s.get().err) == codes.Unauthenticated })
			c.fake.SetIntrospectDown(true)
			other := c.shopper(r, "someone")
			expect.MustCode(t, "", other.get().err, codes.Unavailable)
		})
	}
}
