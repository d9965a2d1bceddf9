// Package store implements catalogsvc.Store over SQLite (several replicas on
// one host share the file; the embedded default) and PostgreSQL (the mode
// for more than one machine), chosen by the DSN's scheme. Both dialects run
// the same SQL text where they can (both take $n placeholders, times are
// unix microseconds in BIGINTs) and the same idempotency rule
// (cart.Decide); they differ in how a cart mutation reaches the database,
// which is where the round trips are.
//
// On SQLite a cart mutation is one immediate transaction (the database's
// write lock is held from BEGIN): one statement reads the cart and the
// idempotency key, cart.Decide says what to do (replay, refuse, or apply
// the change), and the new cart and the key are written.
//
// On PostgreSQL the common case is one statement, one round trip: the
// change is computed from the cart as this replica last saw it, and the
// statement writes the new cart and the key only if the stored cart is
// still that one and the key is new (a compare and swap). When it is not,
// the statement returns the cart and key as they are, and the change is
// computed again; past a few such conflicts, the mutation takes the
// locking path, a transaction holding the cart row's write lock. Either
// way nothing another replica does can interleave, so no update is lost,
// and a key is recorded in the statement that applies its change.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// Store is a catalogsvc.Store in SQLite or PostgreSQL.
type Store struct {
	catalogsvc.Store // the dialect's implementation
	close            func() error
	dialect          string
}

var _ catalogsvc.Store = (*Store)(nil)

// Open opens the store named by dsn (a postgres:// URL or a SQLite file
// path) and brings its schema up to date. Replicas may open one store at
// the same moment: migrations run once, under a lock.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if sqldb.IsPostgres(dsn) {
		db, err := openPostgres(ctx, dsn, log)
		if err != nil {
			return nil, err
		}
		return &Store{Store: db, close: db.Close, dialect: "postgres"}, nil
	}
	db, err := openSQLite(ctx, dsn, log)
	if err != nil {
		return nil, err
	}
	return &Store{Store: db, close: db.Close, dialect: "sqlite"}, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Close releases the database.
func (s *Store) Close() error { return s.close() }

//go:embed migrations
var migrations embed.FS

func migrationsFor(dialect string) sqldb.Migrations {
	sub, err := fs.Sub(migrations, "migrations/"+dialect)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	// LockID serialises concurrent replica starts on PostgreSQL: "catalog".
	return sqldb.Migrations{FS: sub, Table: "catalogsvc_schema_version", LockID: 0x636174616c6f67}
}

// The SQL, shared by both dialects.
const (
	sqlCatalogVersion = `SELECT version FROM catalog_meta WHERE id = 1`
	sqlProducts       = `SELECT id, name, description, category, currency, units, nanos, update_time FROM products ORDER BY id`
	sqlUpsertProduct  = `INSERT INTO products (id, name, description, category, currency, units, nanos, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
			category = excluded.category, currency = excluded.currency, units = excluded.units,
			nanos = excluded.nanos, update_time = excluded.update_time`
	sqlSeedProduct = `INSERT INTO products (id, name, description, category, currency, units, nanos, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`
	sqlDeleteProduct = `DELETE FROM products WHERE id = $1`
	sqlBumpCatalog   = `UPDATE catalog_meta SET version = version + 1 WHERE id = 1`
	// sqlClaimSeed succeeds (one row) for exactly one replica, once ever:
	// concurrent claimers wait on the row lock, then see seeded = 1.
	sqlClaimSeed = `UPDATE catalog_meta SET seeded = 1, version = version + 1 WHERE id = 1 AND seeded = 0`

	sqlCart = `SELECT version, lines, update_time FROM carts WHERE owner = $1`
	// sqlCartForChange reads, in one row, what a change is decided on: the
	// cart and the request's key, either NULL when absent.
	sqlCartForChange = `SELECT c.version, c.lines, c.update_time, r.params_hash, r.version, r.lines, r.update_time
		FROM (SELECT 1) AS one
		LEFT JOIN carts c ON c.owner = $1
		LEFT JOIN cart_requests r ON r.owner = $1 AND r.request_id = $2`
	sqlRequest       = `SELECT params_hash, version, lines, update_time FROM cart_requests WHERE owner = $1 AND request_id = $2`
	sqlInsertCart    = `INSERT INTO carts (owner, version, lines, update_time) VALUES ($1, $2, $3, $4)`
	sqlUpdateCart    = `UPDATE carts SET version = $2, lines = $3, update_time = $4 WHERE owner = $1`
	sqlInsertRequest = `INSERT INTO cart_requests (owner, request_id, params_hash, version, lines, update_time, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	sqlPruneRequests = `DELETE FROM cart_requests WHERE create_time < $1`
)

// row is what both drivers' Row types offer.
type row interface {
	Scan(dest ...any) error
}

func scanProduct(r row) (catalogsvc.Product, error) {
	var p catalogsvc.Product
	var updated int64
	if err := r.Scan(&p.ID, &p.Name, &p.Description, &p.Category, &p.Currency, &p.Units, &p.Nanos, &updated); err != nil {
		return catalogsvc.Product{}, err
	}
	p.UpdateTime = time.UnixMicro(updated).UTC()
	return p, nil
}

func productArgs(p catalogsvc.Product) []any {
	return []any{p.ID, p.Name, p.Description, p.Category, p.Currency, p.Units, p.Nanos, p.UpdateTime.UnixMicro()}
}

// scanCart reads a cart row; noRows is the driver's "no row" error, which
// means the empty cart at version 0.
func scanCart(r row, noRows error) (c cart.Cart, exists bool, err error) {
	var lines string
	var updated int64
	err = r.Scan(&c.Version, &lines, &updated)
	if errors.Is(err, noRows) {
		return cart.Cart{}, false, nil
	}
	if err != nil {
		return cart.Cart{}, false, err
	}
	c, err = decodeCart(c.Version, lines, updated)
	return c, err == nil, err
}

func scanRecord(r row, noRows error) (*cart.Record, error) {
	var rec cart.Record
	var lines string
	var version, updated int64
	err := r.Scan(&rec.Hash, &version, &lines, &updated)
	if errors.Is(err, noRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Result, err = decodeCart(version, lines, updated); err != nil {
		return nil, err
	}
	return &rec, nil
}

// scanChange reads a row of sqlCartForChange's columns, after the columns
// of front if any: the cart (the empty cart at version 0 if it has no
// row), whether it has a row, and the request's record (nil if none).
func scanChange(r row, front ...any) (cur cart.Cart, exists bool, rec *cart.Record, err error) {
	var (
		version, updated, recVersion, recUpdated *int64
		lines, recLines                          *string
		hash                                     []byte
	)
	dest := append(front, &version, &lines, &updated, &hash, &recVersion, &recLines, &recUpdated)
	if err := r.Scan(dest...); err != nil {
		return cart.Cart{}, false, nil, err
	}
	if version != nil && lines != nil && updated != nil {
		if cur, err = decodeCart(*version, *lines, *updated); err != nil {
			return cart.Cart{}, false, nil, err
		}
		exists = true
	}
	if recVersion != nil && recLines != nil && recUpdated != nil {
		rec = &cart.Record{Hash: hash}
		if rec.Result, err = decodeCart(*recVersion, *recLines, *recUpdated); err != nil {
			return cart.Cart{}, false, nil, err
		}
	}
	return cur, exists, rec, nil
}

// decodeCart builds a cart from its stored columns.
func decodeCart(version int64, lines string, updated int64) (cart.Cart, error) {
	l, err := cart.DecodeLines([]byte(lines))
	if err != nil {
		return cart.Cart{}, err
	}
	return cart.Cart{Version: version, Lines: l, UpdateTime: time.UnixMicro(updated).UTC()}, nil
}

func cartArgs(owner string, c cart.Cart) []any {
	return []any{owner, c.Version, string(cart.EncodeLines(c.Lines)), c.UpdateTime.UnixMicro()}
}

func requestArgs(owner string, req cart.Request, c cart.Cart, now time.Time) []any {
	return []any{owner, req.ID, req.Hash[:], c.Version, string(cart.EncodeLines(c.Lines)), c.UpdateTime.UnixMicro(), now.UnixMicro()}
}

// wrap names the operation that failed, keeping err for errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
