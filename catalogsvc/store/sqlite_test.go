package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// TestSQLiteFileGone deletes or replaces the database file under an open
// store: readiness must turn red and no write may be acknowledged, each
// failing with an error the services answer with Unavailable.
func TestSQLiteFileGone(t *testing.T) {
	t.Parallel()
	changes := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a restore", func(t *testing.T, path string) {
			backup := filepath.Join(filepath.Dir(path), "backup.db")
			closeStore(t, open(t, backup))
			if err := os.Rename(backup, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	ops := []struct {
		name string
		op   func(ctx context.Context, s *store.Store) error
	}{
		{"Ping", func(ctx context.Context, s *store.Store) error { return s.Ping(ctx) }},
		{"UpsertProduct", func(ctx context.Context, s *store.Store) error { return s.UpsertProduct(ctx, product("tea")) }},
		{"DeleteProduct", func(ctx context.Context, s *store.Store) error { return s.DeleteProduct(ctx, "kept") }},
		{"SeedProducts", func(ctx context.Context, s *store.Store) error {
			_, err := s.SeedProducts(ctx, []catalogsvc.Product{product("seed")})
			return err
		}},
		{"MutateCart", func(ctx context.Context, s *store.Store) error {
			_, err := s.MutateCart(ctx, "owner", cart.Request{ID: "r"}, add("p", 1))
			return err
		}},
		{"PruneRequests", func(ctx context.Context, s *store.Store) error {
			_, err := s.PruneRequests(ctx, time.Now())
			return err
		}},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "catalog.db")
			s := open(t, path)
			if err := s.UpsertProduct(ctx, product("kept")); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping before the change: %v", err)
			}
			ch.change(t, path)
			for _, tt := range ops {
				err := tt.op(ctx, s)
				if got := sqldb.Transient(err); !got {
					t.Errorf("%s: err = %v, Transient = %v; want a transient error", tt.name, err, got)
				}
			}
		})
	}
}
