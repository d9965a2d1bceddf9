package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// postgresDB is the store in PostgreSQL, through a pgx pool (sized by sqldb:
// 16 connections unless the DSN says otherwise).
type postgresDB struct {
	pool *pgxpool.Pool
	// seen holds the carts this replica last read or wrote, the guesses
	// of MutateCart's one-statement path.
	seen *seenCarts
}

// openPostgres connects to dsn and migrates the schema.
func openPostgres(ctx context.Context, dsn string, log *slog.Logger) (*postgresDB, error) {
	pool, err := sqldb.OpenPostgres(ctx, dsn, migrationsFor("postgres"), log)
	if err != nil {
		return nil, err
	}
	return &postgresDB{pool: pool, seen: newSeenCarts()}, nil
}

// Close closes the pool.
func (p *postgresDB) Close() error {
	p.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (p *postgresDB) Ping(ctx context.Context) error { return p.pool.Ping(ctx) }

// CatalogVersion returns the catalog's change counter.
func (p *postgresDB) CatalogVersion(ctx context.Context) (int64, error) {
	var v int64
	err := p.pool.QueryRow(ctx, sqlCatalogVersion).Scan(&v)
	return v, wrap("catalog version", err)
}

// Products returns every product, ordered by id.
func (p *postgresDB) Products(ctx context.Context) ([]catalogsvc.Product, error) {
	rows, err := p.pool.Query(ctx, sqlProducts)
	if err != nil {
		return nil, wrap("products", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalogsvc.Product, error) { return scanProduct(r) })
	return out, wrap("products", err)
}

// UpsertProduct creates or replaces pr and bumps the catalog version.
func (p *postgresDB) UpsertProduct(ctx context.Context, pr catalogsvc.Product) error {
	return wrap("upsert product", pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(sqlUpsertProduct, productArgs(pr)...)
		b.Queue(sqlBumpCatalog)
		return tx.SendBatch(ctx, b).Close()
	}))
}

// DeleteProduct removes the product id (ErrNotFound if absent) and bumps
// the catalog version.
func (p *postgresDB) DeleteProduct(ctx context.Context, id string) error {
	return wrap("delete product", pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlDeleteProduct, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return catalogsvc.ErrNotFound
		}
		_, err = tx.Exec(ctx, sqlBumpCatalog)
		return err
	}))
}

// SeedProducts inserts products unless a seed was ever loaded (by any
// replica, whatever has been deleted since), and reports whether it did.
func (p *postgresDB) SeedProducts(ctx context.Context, products []catalogsvc.Product) (bool, error) {
	seeded := false
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlClaimSeed)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		b := &pgx.Batch{}
		for _, pr := range products {
			b.Queue(sqlSeedProduct, productArgs(pr)...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		seeded = true
		return nil
	})
	if err != nil {
		return false, wrap("seed products", err)
	}
	return seeded, nil
}

// Cart returns owner's cart, the empty cart at version 0 if none.
func (p *postgresDB) Cart(ctx context.Context, owner string) (cart.Cart, error) {
	c, _, err := scanCart(p.pool.QueryRow(ctx, sqlCart, owner), pgx.ErrNoRows)
	if err != nil {
		return cart.Cart{}, wrap("cart", err)
	}
	p.seen.put(owner, c) // a change often follows a read
	return c, nil
}

// PruneRequests deletes idempotency keys created before cutoff.
func (p *postgresDB) PruneRequests(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := p.pool.Exec(ctx, sqlPruneRequests, cutoff.UnixMicro())
	return tag.RowsAffected(), wrap("prune requests", err)
}
