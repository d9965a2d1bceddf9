package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

const (
	// maxOptimisticWrites bounds the compare-and-swap statements of one
	// mutation: one against the cart last seen, one against the cart the
	// failed one returned. A cart that moves under both is contended, and
	// waiting on its row lock is cheaper than more retries.
	maxOptimisticWrites = 2
	// maxNewCartRetries bounds the retries of a locked mutation that lost
	// the race to create a cart row (see mutateLocked).
	maxNewCartRetries = 3
	// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
	uniqueViolation = "23505"
)

// The compare-and-swap statements. Each writes the cart ($4-$6) and, with
// a request id ($2, empty for none), its key ($3 the parameters' hash, $7 the
// creation time) only if the stored cart is the one the change was
// computed from and the key is not already recorded; the key is inserted
// by the statement that writes its change, so a change is applied once.
// A statement is its own transaction: it writes all or nothing. It returns
// whether it wrote and, when it did not, the cart and the key as the
// statement's snapshot has them (sqlCartForChange's columns). A key
// recorded by a transaction that commits while the statement runs is not
// in its snapshot: the insert then fails on the primary key, writing
// nothing, and the mutation takes the locking path, which finds the key.
const (
	sqlCASPrior = `WITH prior AS (
		SELECT params_hash, version, lines, update_time FROM cart_requests WHERE owner = $1 AND request_id = $2
	), written AS (`
	sqlCASTail = `
	), recorded AS (
		INSERT INTO cart_requests (owner, request_id, params_hash, version, lines, update_time, create_time)
		SELECT owner, $2, $3::bytea, $4::bigint, $5::text, $6::bigint, $7::bigint FROM written WHERE $2 <> ''
	)
	SELECT EXISTS (SELECT FROM written), c.version, c.lines, c.update_time, p.params_hash, p.version, p.lines, p.update_time
		FROM (SELECT 1) AS one
		LEFT JOIN (SELECT * FROM carts WHERE owner = $1 AND NOT EXISTS (SELECT FROM written)) AS c ON true
		LEFT JOIN prior p ON true`
	// sqlCASUpdate changes a cart whose row is at version $8, updated at $9.
	// The version alone identifies the row's content (it grows with every
	// change and rows are never deleted); the time also tells apart a cart
	// of a database recreated under a running replica.
	sqlCASUpdate = sqlCASPrior + `
		UPDATE carts SET version = $4, lines = $5, update_time = $6
		WHERE owner = $1 AND version = $8 AND update_time = $9 AND NOT EXISTS (SELECT FROM prior)
		RETURNING owner` + sqlCASTail
	// sqlCASInsert creates a cart that has no row.
	sqlCASInsert = sqlCASPrior + `
		INSERT INTO carts (owner, version, lines, update_time)
		SELECT $1, $4::bigint, $5::text, $6::bigint WHERE NOT EXISTS (SELECT FROM prior)
		ON CONFLICT (owner) DO NOTHING
		RETURNING owner` + sqlCASTail
)

// MutateCart applies a change to owner's cart, as the package
// documentation describes, and returns the resulting cart.
func (p *postgresDB) MutateCart(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error) {
	c, done, err := p.mutateOptimistic(ctx, owner, req, apply)
	if err == nil && !done {
		c, err = p.mutateLocked(ctx, owner, req, apply)
	}
	return c, wrap("mutate cart", err)
}

// mutateOptimistic computes the change from the cart this replica last saw
// (a cart with no row yet, for an owner it has not seen) and writes it
// with one compare-and-swap statement: in the common case, the whole
// mutation in one round trip. A statement that does not write returns the
// cart as it is, to compute the change from again. An outcome computed
// from a guess that writes nothing (a failure such as a version mismatch,
// or no change) is not trusted until the cart has been read. done is false
// when the change is left to the locking path: the cart is contended, a
// key arrived while the statement ran, or the change records a key
// without changing the cart (rare: a retried no-op).
func (p *postgresDB) mutateOptimistic(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (c cart.Cart, done bool, err error) {
	cur, _ := p.seen.get(owner)
	var rec *cart.Record
	fresh := false // cur and rec were read from the database by this call
	for writes := 0; ; {
		d, err := cart.Decide(cur, rec, req, apply)
		if !fresh && (err != nil || !d.WriteCart) {
			if cur, _, rec, err = scanChange(p.pool.QueryRow(ctx, sqlCartForChange, owner, req.ID)); err != nil {
				return cart.Cart{}, true, err
			}
			fresh = true
			p.seen.put(owner, cur)
			continue
		}
		switch {
		case err != nil:
			return cart.Cart{}, true, err
		case !d.WriteCart && d.WriteRecord:
			return cart.Cart{}, false, nil
		case !d.WriteCart:
			return d.Result, true, nil // a replay, or a change that changes nothing
		case writes == maxOptimisticWrites:
			return cart.Cart{}, false, nil
		}
		writes++
		var written bool
		cur, _, rec, err = scanChange(p.compareAndSwap(ctx, owner, req, cur, d.Result), &written)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
			return cart.Cart{}, false, nil
		}
		if err != nil {
			return cart.Cart{}, true, err
		}
		if written {
			p.seen.put(owner, d.Result)
			return d.Result, true, nil
		}
		fresh = true
		p.seen.put(owner, cur)
	}
}

// compareAndSwap sends the statement that replaces from, owner's cart as
// last seen, with to, and records req's key.
func (p *postgresDB) compareAndSwap(ctx context.Context, owner string, req cart.Request, from, to cart.Cart) pgx.Row {
	args := []any{owner, req.ID, req.Hash[:], to.Version, string(cart.EncodeLines(to.Lines)), to.UpdateTime.UnixMicro(), time.Now().UnixMicro()}
	if from.Version == 0 { // every stored cart is at version 1 or more
		return p.pool.QueryRow(ctx, sqlCASInsert, args...)
	}
	return p.pool.QueryRow(ctx, sqlCASUpdate, append(args, from.Version, from.UpdateTime.UnixMicro())...)
}

// mutateLocked applies a change in one transaction that holds the cart
// row's write lock from the read to the commit.
//
// It costs two round trips: the first pipelines BEGIN, the cart row read
// with SELECT ... FOR UPDATE (which holds off every other mutation of this
// cart until commit) and the idempotency-key read (a separate statement,
// so under READ COMMITTED it sees every key committed by whoever held the
// lock before); the second pipelines the cart write, the key insert and
// COMMIT. A cart with no row yet cannot be locked: two first mutations may
// both try to insert it, the loser fails on the primary key, rolls back
// entirely and starts over, finding the row to lock.
func (p *postgresDB) mutateLocked(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error) {
	for attempt := 0; ; attempt++ {
		c, err := p.mutateLockedOnce(ctx, owner, req, apply)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation && attempt < maxNewCartRetries {
			continue // lost the race to create the cart
		}
		return c, err
	}
}

func (p *postgresDB) mutateLockedOnce(ctx context.Context, owner string, req cart.Request, apply cart.ApplyFunc) (cart.Cart, error) {
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
		p.seen.put(owner, cur)
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
	if d.WriteCart {
		p.seen.put(owner, d.Result)
	}
	return d.Result, nil
}
