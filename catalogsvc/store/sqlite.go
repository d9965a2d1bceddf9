package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// sqliteDB is the store in a SQLite file. Several processes may share the
// file: sqldb opens it in WAL mode with immediate transactions and a busy
// timeout, so writers queue on SQLite's lock and readers never wait.
type sqliteDB struct {
	db *sql.DB
	// file notices the database file being deleted or replaced under the
	// process, which SQLite does not: Ping and every commit check it.
	file *sqldb.SQLiteFile
	// stmts holds the hot statements prepared: the SQLite library's parser
	// is otherwise about half of the cost of a cart read.
	stmts map[string]*sql.Stmt
	// writeMu queues this process's writers in Go, so that only one of its
	// connections at a time waits on the file lock: SQLite's busy handler
	// polls with sleeps, a mutex hands over at once.
	writeMu sync.Mutex
}

// openSQLite opens (creating it if needed) and migrates the database at path.
func openSQLite(ctx context.Context, path string, log *slog.Logger) (*sqliteDB, error) {
	db, err := sqldb.OpenSQLite(ctx, path, migrationsFor("sqlite"), log)
	if err != nil {
		return nil, err
	}
	s := &sqliteDB{db: db, stmts: map[string]*sql.Stmt{}}
	if s.file, err = sqldb.WatchSQLiteFile(path); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	for _, q := range []string{sqlCatalogVersion, sqlCart, sqlCartForChange, sqlInsertCart, sqlUpdateCart, sqlInsertRequest} {
		//nolint:sqlclosecheck // kept for the store's life; Close closes them
		if s.stmts[q], err = db.PrepareContext(ctx, q); err != nil {
			return nil, errors.Join(fmt.Errorf("sqlite: prepare: %w", err), s.Close())
		}
	}
	return s, nil
}

// Close closes the database.
func (s *sqliteDB) Close() error {
	var errs []error
	for _, st := range s.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// queryRow runs the prepared statement q, in tx when not nil.
func (s *sqliteDB) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if tx != nil {
		// A transaction's statements close with it; closing this one here
		// would wait for the row the caller has yet to scan.
		return tx.StmtContext(ctx, s.stmts[q]).QueryRowContext(ctx, args...) //nolint:sqlclosecheck
	}
	return s.stmts[q].QueryRowContext(ctx, args...)
}

// exec runs the prepared statement q in tx.
func (s *sqliteDB) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	_, err := tx.StmtContext(ctx, s.stmts[q]).ExecContext(ctx, args...) //nolint:sqlclosecheck // closed with tx
	return err
}

// Ping checks that the database file is still the one opened and answers.
func (s *sqliteDB) Ping(ctx context.Context) error {
	if err := s.file.Check(); err != nil {
		return err
	}
	return s.db.PingContext(ctx)
}

// CatalogVersion returns the catalog's change counter.
func (s *sqliteDB) CatalogVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.queryRow(ctx, nil, sqlCatalogVersion).Scan(&v)
	return v, wrap("catalog version", err)
}

// Products returns every product, ordered by id.
func (s *sqliteDB) Products(ctx context.Context) ([]catalogsvc.Product, error) {
	rows, err := s.db.QueryContext(ctx, sqlProducts)
	if err != nil {
		return nil, wrap("products", err)
	}
	defer rows.Close()
	var out []catalogsvc.Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, wrap("products", err)
		}
		out = append(out, p)
	}
	return out, wrap("products", rows.Err())
}

// UpsertProduct creates or replaces p and bumps the catalog version.
func (s *sqliteDB) UpsertProduct(ctx context.Context, p catalogsvc.Product) error {
	return wrap("upsert product", s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, sqlUpsertProduct, productArgs(p)...); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, sqlBumpCatalog)
		return err
	}))
}

// DeleteProduct removes the product id (ErrNotFound if absent) and bumps
// the catalog version.
func (s *sqliteDB) DeleteProduct(ctx context.Context, id string) error {
	return wrap("delete product", s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDeleteProduct, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return catalogsvc.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, sqlBumpCatalog)
		return err
	}))
}

// SeedProducts inserts products unless a seed was ever loaded (by any
// replica, whatever has been deleted since), and reports whether it did.
func (s *sqliteDB) SeedProducts(ctx context.Context, products []catalogsvc.Product) (bool, error) {
	seeded := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlClaimSeed)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // seeded before
		}
		for _, p := range products {
			if _, err := tx.ExecContext(ctx, sqlSeedProduct, productArgs(p)...); err != nil {
				return err
			}
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
func (s *sqliteDB) Cart(ctx context.Context, owner string) (cart.Cart, error) {
	c, _, err := scanCart(s.queryRow(ctx, nil, sqlCart, owner), sql.ErrNoRows)
	return c, wrap("cart", err)
}

// MutateCart applies a change to owner's cart in one immediate transaction
// (the database's write lock is held from BEGIN), as described in the
// package documentation, and returns the resulting cart: one read, and
// one write for each of the cart and the key that change.
func (s *sqliteDB) MutateCart(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error) {
	var d cart.Outcome
	err := s.write(ctx, func(tx *sql.Tx) error {
		cur, exists, rec, err := scanChange(s.queryRow(ctx, tx, sqlCartForChange, owner, req.ID))
		if err != nil {
			return err
		}
		if d, err = cart.Decide(cur, rec, req, apply); err != nil {
			return err
		}
		if d.WriteCart {
			q := sqlUpdateCart
			if !exists {
				q = sqlInsertCart
			}
			if err := s.exec(ctx, tx, q, cartArgs(owner, d.Result)...); err != nil {
				return err
			}
		}
		if d.WriteRecord {
			if err := s.exec(ctx, tx, sqlInsertRequest, requestArgs(owner, req, d.Result, time.Now())...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return cart.Cart{}, wrap("mutate cart", err)
	}
	return d.Result, nil
}

// PruneRequests deletes idempotency keys created before cutoff.
func (s *sqliteDB) PruneRequests(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlPruneRequests, cutoff.UnixMicro())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("prune requests", err)
}

// write runs fn in a write transaction, committing if it returns nil and
// the database file is still the one opened, before and after the commit:
// a write to a deleted or replaced file would be lost, so it is not
// acknowledged.
func (s *sqliteDB) write(ctx context.Context, fn func(*sql.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return s.file.Commit(tx)
}
