package store

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// wire counts what a PostgreSQL pool sends: round trips, as the turns of
// each connection (a write after the server has answered), and statements,
// through pgx's tracer (each query, each query of a batch, each prepare).
type wire struct {
	trips, statements atomic.Int64
}

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := new(net.Dialer).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &turnConn{Conn: c, w: w}
	tc.answered.Store(true)
	return tc, nil
}

// counts returns the round trips and statements counted so far.
func (w *wire) counts() (trips, statements int64) { return w.trips.Load(), w.statements.Load() }

func (w *wire) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	w.statements.Add(1)
	return ctx
}

func (*wire) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (w *wire) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (w *wire) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	w.statements.Add(1)
}

func (*wire) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (w *wire) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	w.statements.Add(1)
	return ctx
}

func (*wire) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// turnConn counts a round trip at each write that follows a read.
type turnConn struct {
	net.Conn
	w        *wire
	answered atomic.Bool
}

func (c *turnConn) Write(b []byte) (int, error) {
	if c.answered.Swap(false) {
		c.w.trips.Add(1)
	}
	return c.Conn.Write(b)
}

func (c *turnConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.answered.Store(true)
	}
	return n, err
}

// countedPostgres opens a fresh PostgreSQL store (migrated) and returns a
// replica of it whose pool of maxConns connections is counted by the
// returned wire. Connections are not pinged on acquire, so that only the
// store's own statements are counted.
func countedPostgres(tb testing.TB, maxConns int32) (*postgresDB, *wire) {
	tb.Helper()
	ctx := context.Background()
	dsn := sqldbtest.DSN(tb)
	s, err := Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	w := &wire{}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.DialFunc = w.dial
	cfg.ConnConfig.Tracer = w
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return &postgresDB{pool: pool, seen: newSeenCarts()}, w
}
