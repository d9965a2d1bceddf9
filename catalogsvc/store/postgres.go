package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// maxNewCartRetries bounds the retries of a mutation that lost the race to
// create a cart row (see MutateCart).
const maxNewCartRetries = 3

// postgresDB is the store in PostgreSQL, through a pgx pool (sized by sqldb:
// 16 connections unless the DSN says otherwise).
type postgresDB struct {
	pool *pgxpool.Pool
}

// openPostgres connects to dsn and migrates the schema.
func openPostgres(ctx context.Context, dsn string, log *slog.Logger) (*postgresDB, error) {
	pool, err := sqldb.OpenPostgres(ctx, dsn, migrationsFor("postgres"), log)
	if err != nil {
		return nil, err
	}
	return &postgresDB{pool: pool}, nil
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
	return c, wrap("cart", err)
}

// MutateCart applies a change to owner's cart in one transaction and
// returns the resulting cart.
//
// It costs two round trips: the first pipelines BEGIN, the cart row read
// with SELECT ... FOR UPDATE (which holds off every other mutation of this
// cart until commit) and the idempotency-key read (a separate statement,
// so under READ COMMITTED it sees every key committed by whoever held the
// lock before); the second pipelines the cart write, the key insert and
// COMMIT. A cart with no row yet cannot be locked: two first mutations may
// both try to insert it, the loser fails on the primary key, rolls back
// entirely and starts over, finding the row to lock.
func (p *postgresDB) MutateCart(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error) {
	for attempt := 0; ; attempt++ {
		c, err := p.mutateOnce(ctx, owner, req, apply)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && attempt < maxNewCartRetries {
			continue // unique_violation: lost the race to create the cart
		}
		return c, wrap("mutate cart", err)
	}
}

func (p *postgresDB) mutateOnce(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return cart.Cart{}, err
	}
	defer conn.Release() // a connection left inside a transaction is destroyed, not reused
	defer func() {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(rctx, "ROLLBACK")
		}
	}()

	var (
		cur    cart.Cart
		exists bool
		rec    *cart.Record
	)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(sqlCart+" FOR UPDATE", owner).QueryRow(func(r pgx.Row) (err error) {
		cur, exists, err = scanCart(r, pgx.ErrNoRows)
		return err
	})
	if req.ID != "" {
		b.Queue(sqlRequest, owner, req.ID).QueryRow(func(r pgx.Row) (err error) {
			rec, err = scanRecord(r, pgx.ErrNoRows)
			return err
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return cart.Cart{}, err
	}
	d, err := cart.Decide(cur, rec, req, apply)
	if err != nil || (!d.WriteCart && !d.WriteRecord) {
		return d.Result, err // the deferred ROLLBACK ends the transaction
	}
	b = &pgx.Batch{}
	if d.WriteCart {
		q := sqlUpdateCart
		if !exists {
			q = sqlInsertCart
		}
		b.Queue(q, cartArgs(owner, d.Result)...)
	}
	if d.WriteRecord {
		b.Queue(sqlInsertRequest, requestArgs(owner, req, d.Result, time.Now())...)
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return cart.Cart{}, err
	}
	return d.Result, nil
}

// PruneRequests deletes idempotency keys created before cutoff.
func (p *postgresDB) PruneRequests(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := p.pool.Exec(ctx, sqlPruneRequests, cutoff.UnixMicro())
	return tag.RowsAffected(), wrap("prune requests", err)
}
