package catalogsvc_test

import (
	"context"
	"math"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/ratelimit"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/token"
)

// TestErrorDetails: every refusal a client can meet carries, over a real
// connection, an ErrorInfo with a stable reason in the tokencart domain,
// and invalid arguments name their field in a BadRequest.
func TestErrorDetails(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	s := c.shopper(r, "details")
	s.add(espresso, 1).must(t)
	admin := client.WithToken(testContext(t), c.fake.Mint(t, "boss", token.RoleAdmin))
	tests := []struct {
		name string
		call func(context.Context) error
		want expect.Failure
	}{
		{"add quantity 0", func(context.Context) error { return s.add(espresso, 0).err },
			expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "quantity"}},
		{"add quantity 1000", func(context.Context) error { return s.add(espresso, 1000).err },
			expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "quantity"}},
		{"add a malformed product id", func(context.Context) error { return s.add("Bad Id", 1).err },
			expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "product_id"}},
		{"add an unknown product", func(context.Context) error { return s.add("no-such-product", 1).err },
			expect.Failure{Code: codes.NotFound, Reason: catalogsvc.ReasonProductNotFound}},
		{"set at a stale version", func(context.Context) error { return s.set(espresso, 2, expecting(99)).err },
			expect.Failure{Code: codes.Aborted, Reason: catalogsvc.ReasonCartVersionMismatch}},
		{"reuse a request id", func(context.Context) error {
			if err := s.add(espresso, 1, withRequestID("details-1")).err; err != nil {
				return err
			}
			return s.add(espresso, 2, withRequestID("details-1")).err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: catalogsvc.ReasonRequestIDReused, Field: "request_id"}},
		{"get an unknown product", func(ctx context.Context) error {
			_, err := r.catalog.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: "no-such-product"})
			return err
		}, expect.Failure{Code: codes.NotFound, Reason: catalogsvc.ReasonProductNotFound}},
		{"list with a negative page size", func(ctx context.Context) error {
			_, err := r.catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: -1})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "page_size"}},
		{"list with a made-up page token", func(ctx context.Context) error {
			_, err := r.catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageToken: "made-up"})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "page_token"}},
		{"upsert a product in dollars", func(context.Context) error {
			_, err := r.catalog.UpsertProduct(admin, &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{
				Id: "dollar", Name: "Dollar", Category: "test", Price: &catalogv1.Money{CurrencyCode: "USD", Units: 1}}})
			return err
		}, expect.Failure{Code: codes.InvalidArgument, Reason: rpcerr.ReasonFieldInvalid, Field: "product.price.currency_code"}},
		{"upsert as a customer", func(context.Context) error {
			_, err := r.catalog.UpsertProduct(s.ctx, &catalogv1.UpsertProductRequest{})
			return err
		}, expect.Failure{Code: codes.PermissionDenied, Reason: grpcauth.ReasonRoleRequired}},
		{"cart without a token", func(ctx context.Context) error {
			_, err := r.carts.GetCart(ctx, &catalogv1.GetCartRequest{})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: grpcauth.ReasonTokenMissing}},
		{"cart with a forged token", func(ctx context.Context) error {
			_, err := r.carts.GetCart(client.WithToken(ctx, "eyJhbGciOiJub25lIn0.e30.x"), &catalogv1.GetCartRequest{})
			return err
		}, expect.Failure{Code: codes.Unauthenticated, Reason: grpcauth.ReasonTokenInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect.Details(t, "", tt.call(testContext(t)), tt.want)
		})
	}
	if info := client.ErrorInfo(s.add("no-such-product", 1).err); info.GetMetadata() != nil {
		t.Errorf("NotFound metadata %v, want none", info.GetMetadata())
	}
	_, err := r.catalog.UpsertProduct(s.ctx, &catalogv1.UpsertProductRequest{})
	if got := client.ErrorInfo(err).GetMetadata()["role"]; got != token.RoleAdmin {
		t.Errorf("PermissionDenied names role %q, want %q", got, token.RoleAdmin)
	}
}

// TestRateLimitDetails: a refusal by the per-caller rate limit carries a
// RetryInfo whose delay agrees with the retry-after header (which is the
// same delay in whole seconds, rounded up).
func TestRateLimitDetails(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[2])
	r := c.start(func(cfg *catalogsvc.Config) { cfg.RateLimit, cfg.RateBurst, cfg.RateLimitCallers = 0.5, 1, 64 })
	ctx := testContext(t)
	var err error
	var md metadata.MD
	for range 3 {
		if _, err = r.catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 1}, grpc.Header(&md)); err != nil {
			break
		}
	}
	expect.Details(t, "flooding ListProducts", err, expect.Failure{Code: codes.ResourceExhausted, Reason: rpcerr.ReasonRateLimited})
	delay, _ := client.RetryDelay(err)
	header := md.Get(ratelimit.RetryAfterHeader)
	if len(header) != 1 || header[0] != strconv.Itoa(int(math.Ceil(delay.Seconds()))) {
		t.Errorf("retry-after %q, RetryInfo %v: want the delay in whole seconds, rounded up", header, delay)
	}
}

// TestPageSizeCoerced: a page_size above the maximum is the maximum
// (AIP-158), in ListProducts and SearchProducts alike.
func TestPageSizeCoerced(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	admin := client.WithToken(testContext(t), c.fake.Mint(t, "boss", token.RoleAdmin))
	const maxPageSize = 100
	for i := range maxPageSize + 1 {
		_, err := r.catalog.UpsertProduct(admin, &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{
			Id: "bulk-" + strconv.Itoa(i), Name: "Bulk item " + strconv.Itoa(i), Category: "bulk",
			Price: &catalogv1.Money{CurrencyCode: "EUR", Units: 1}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int32{maxPageSize + 1, 500, math.MaxInt32} {
		list, err := r.catalog.ListProducts(testContext(t), &catalogv1.ListProductsRequest{PageSize: size})
		if err != nil || len(list.GetProducts()) != maxPageSize || list.GetNextPageToken() == "" {
			t.Errorf("ListProducts page_size %d: %d products, next %q, %v; want %d and a next page",
				size, len(list.GetProducts()), list.GetNextPageToken(), err, maxPageSize)
		}
		found, err := r.catalog.SearchProducts(testContext(t), &catalogv1.SearchProductsRequest{Query: "bulk", PageSize: size})
		if err != nil || len(found.GetProducts()) != maxPageSize || found.GetNextPageToken() == "" {
			t.Errorf("SearchProducts page_size %d: %d products, next %q, %v; want %d and a next page",
				size, len(found.GetProducts()), found.GetNextPageToken(), err, maxPageSize)
		}
	}
}
