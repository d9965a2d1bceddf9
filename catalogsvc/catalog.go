package catalogsvc

import (
	"context"
	"strings"
	"time"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// catalogServer implements CatalogService: reads from the snapshot, writes
// through the database followed by an immediate snapshot refresh.
type catalogServer struct {
	catalogv1.UnimplementedCatalogServiceServer
	s *Service
}

func (c catalogServer) ListProducts(ctx context.Context, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := validateCategory("category", req.GetCategory(), false); err != nil {
		return nil, err
	}
	query := "list\x00" + req.GetCategory()
	after, err := decodePageToken(query, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	snap := c.s.snap.Load()
	products, more := snap.page(after, size, func(i int) bool {
		return req.GetCategory() == "" || snap.products[i].Category == req.GetCategory()
	})
	resp := &catalogv1.ListProductsResponse{Products: products}
	if more {
		resp.NextPageToken = encodePageToken(query, products[len(products)-1].Id)
	}
	return resp, nil
}

func (c catalogServer) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	if err := validateProductID("product_id", req.GetProductId()); err != nil {
		return nil, err
	}
	p, ok := c.s.snap.Load().byID[req.GetProductId()]
	if !ok {
		return nil, ErrNotFound
	}
	return &catalogv1.GetProductResponse{Product: p}, nil
}

func (c catalogServer) SearchProducts(ctx context.Context, req *catalogv1.SearchProductsRequest) (*catalogv1.SearchProductsResponse, error) {
	q := req.GetQuery()
	if err := validateQuery(q); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := validateCategory("category", req.GetCategory(), false); err != nil {
		return nil, err
	}
	words := strings.Fields(strings.ToLower(q))
	query := "search\x00" + req.GetCategory() + "\x00" + strings.Join(words, " ")
	after, err := decodePageToken(query, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	snap := c.s.snap.Load()
	products, more := snap.page(after, size, func(i int) bool {
		if req.GetCategory() != "" && snap.products[i].Category != req.GetCategory() {
			return false
		}
		for _, w := range words {
			if !strings.Contains(snap.text[i], w) {
				return false
			}
		}
		return true
	})
	resp := &catalogv1.SearchProductsResponse{Products: products}
	if more {
		resp.NextPageToken = encodePageToken(query, products[len(products)-1].Id)
	}
	return resp, nil
}

func (c catalogServer) UpsertProduct(ctx context.Context, req *catalogv1.UpsertProductRequest) (*catalogv1.UpsertProductResponse, error) {
	if err := grpcauth.RequireRole(ctx, token.RoleAdmin); err != nil {
		return nil, err
	}
	if err := validateProduct(req.GetProduct()); err != nil {
		return nil, err
	}
	p := fromProto(req.GetProduct(), time.Now())
	if err := c.s.store.UpsertProduct(ctx, p); err != nil {
		return nil, err
	}
	c.s.refreshAfterWrite(ctx)
	return &catalogv1.UpsertProductResponse{Product: toProto(p)}, nil
}

func (c catalogServer) DeleteProduct(ctx context.Context, req *catalogv1.DeleteProductRequest) (*catalogv1.DeleteProductResponse, error) {
	if err := grpcauth.RequireRole(ctx, token.RoleAdmin); err != nil {
		return nil, err
	}
	if err := validateProductID("product_id", req.GetProductId()); err != nil {
		return nil, err
	}
	if err := c.s.store.DeleteProduct(ctx, req.GetProductId()); err != nil {
		return nil, err
	}
	c.s.refreshAfterWrite(ctx)
	return &catalogv1.DeleteProductResponse{}, nil
}

// refreshAfterWrite reloads the snapshot after this replica's own write, so
// its next read sees it. The write is committed whatever happens here: a
// failed reload is only logged, and the poll catches up.
func (s *Service) refreshAfterWrite(ctx context.Context) {
	if err := s.refreshCatalog(context.WithoutCancel(ctx)); err != nil {
		s.log.WarnContext(ctx, "catalog refresh after a write failed; the poll will retry", "error", err)
	}
}
