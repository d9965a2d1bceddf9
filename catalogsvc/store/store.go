// Package store keeps catalogsvc's durable state: the products, the catalog's
// change counter, the carts and the carts' idempotency keys, in SQLite
// (several replicas on one host share the file) or PostgreSQL (the mode for
// more than one machine). Both implementations run the same SQL text (both
// dialects take $n placeholders, times are unix microseconds in BIGINTs) and
// the same decision logic; they differ in how a cart mutation reaches the
// database, which is where the round trips are.
//
// A cart mutation is one transaction holding the cart row's write lock: it
// reads the cart and the idempotency key, decides (replay, refuse, or apply
// the change with cart.Apply), and writes the new cart and the key. Nothing
// another replica does can interleave, so no update is lost.
package store

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/sqldb"
)

// Errors, for errors.Is.
var (
	// ErrNotFound: no such product.
	ErrNotFound = errors.New("store: not found")
)

// RequestRetention is how long idempotency keys are kept at least;
// PruneRequests callers should pass a cutoff no later than now minus it.
const RequestRetention = 24 * time.Hour

// Product is a catalog entry as stored.
type Product struct {
	ID, Name, Description, Category string
	// Price: Currency, Units and Nanos as in google.type.Money.
	Currency   string
	Units      int64
	Nanos      int32
	UpdateTime time.Time
}

// Request is a mutation's idempotency claim: its key (empty for none) and
// the hash of its parameters.
type Request struct {
	ID   string
	Hash [32]byte
}

// ApplyFunc computes a cart's next state, as cart.Apply does; it runs
// inside the mutation's transaction and must not do I/O.
type ApplyFunc func(cart.Cart) (next cart.Cart, changed bool, err error)

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

	sqlCart          = `SELECT version, lines, update_time FROM carts WHERE owner = $1`
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

func scanProduct(r row) (Product, error) {
	var p Product
	var updated int64
	if err := r.Scan(&p.ID, &p.Name, &p.Description, &p.Category, &p.Currency, &p.Units, &p.Nanos, &updated); err != nil {
		return Product{}, err
	}
	p.UpdateTime = time.UnixMicro(updated).UTC()
	return p, nil
}

func productArgs(p Product) []any {
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
	if c.Lines, err = cart.DecodeLines([]byte(lines)); err != nil {
		return cart.Cart{}, false, err
	}
	c.UpdateTime = time.UnixMicro(updated).UTC()
	return c, true, nil
}

// record is a stored idempotency key.
type record struct {
	hash []byte
	cart cart.Cart
}

func scanRecord(r row, noRows error) (*record, error) {
	var rec record
	var lines string
	var updated int64
	err := r.Scan(&rec.hash, &rec.cart.Version, &lines, &updated)
	if errors.Is(err, noRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.cart.Lines, err = cart.DecodeLines([]byte(lines)); err != nil {
		return nil, err
	}
	rec.cart.UpdateTime = time.UnixMicro(updated).UTC()
	return &rec, nil
}

// decision is what a mutation does once it has read the cart and key.
type decision struct {
	result       cart.Cart
	writeCart    bool
	writeRequest bool
}

// decide is the logic of every mutation, whichever the store: a known key
// replays its result or, with other parameters, is refused; otherwise the
// change is applied, and the key recorded with its result (also when the
// change was a no-op, so the key cannot later be reused for something else).
func decide(cur cart.Cart, rec *record, req Request, apply ApplyFunc) (decision, error) {
	if rec != nil {
		if !bytes.Equal(rec.hash, req.Hash[:]) {
			return decision{}, cart.ErrRequestReused
		}
		return decision{result: rec.cart}, nil
	}
	next, changed, err := apply(cur)
	if err != nil {
		return decision{}, err
	}
	// What is stored has microsecond precision; return exactly that, so a
	// first answer and its replays agree.
	next.UpdateTime = time.UnixMicro(next.UpdateTime.UnixMicro()).UTC()
	return decision{result: next, writeCart: changed, writeRequest: req.ID != ""}, nil
}

func cartArgs(owner string, c cart.Cart) []any {
	return []any{owner, c.Version, string(cart.EncodeLines(c.Lines)), c.UpdateTime.UnixMicro()}
}

func requestArgs(owner string, req Request, c cart.Cart, now time.Time) []any {
	return []any{owner, req.ID, req.Hash[:], c.Version, string(cart.EncodeLines(c.Lines)), c.UpdateTime.UnixMicro(), now.UnixMicro()}
}

// wrap names the operation that failed, keeping err for errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
