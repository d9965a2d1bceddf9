package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// sqlRawUpsert is the ceiling of a cart change: one autocommitted
// statement with no idempotency key and no read of the cart (as the bench
// harness's upsert-raw scenario).
const sqlRawUpsert = `INSERT INTO carts (owner, version, lines, update_time) VALUES ($1, 1, $2, $3)
ON CONFLICT (owner) DO UPDATE SET version = carts.version + 1, lines = EXCLUDED.lines, update_time = EXCLUDED.update_time`

// BenchmarkPostgresCartChange compares, in one run, a cart change through
// MutateCart (one compare-and-swap statement), through the locking path
// alone (the store's former only path), and the raw upsert: 8 callers on a
// pool of 8 connections, each changing its own cart with a new request id
// per change, as AddItem does. Besides time it reports round trips and
// statements per change, and the CPU time PostgreSQL's backends serving
// the pool spent per change (pg-µs/op, read from /proc: the server must
// run on this host).
//
//	go test -run '^$' -bench PostgresCartChange -benchtime 4000x ./catalogsvc/store/
func BenchmarkPostgresCartChange(b *testing.B) {
	paths := []struct {
		name   string
		change func(ctx context.Context, db *postgresDB, owner string, req cart.Request, op cart.Op, lines []cart.Line) error
	}{
		{"store", func(ctx context.Context, db *postgresDB, owner string, req cart.Request, op cart.Op, _ []cart.Line) error {
			_, err := db.MutateCart(ctx, owner, req, change(op))
			return err
		}},
		{"locking-path", func(ctx context.Context, db *postgresDB, owner string, req cart.Request, op cart.Op, _ []cart.Line) error {
			_, err := db.mutateLocked(ctx, owner, req, change(op))
			return err
		}},
		{"raw-upsert", func(ctx context.Context, db *postgresDB, owner string, _ cart.Request, _ cart.Op, lines []cart.Line) error {
			_, err := db.pool.Exec(ctx, sqlRawUpsert, owner, string(cart.EncodeLines(lines)), time.Now().UnixMicro())
			return err
		}},
	}
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			const conns = 8
			ctx := context.Background()
			db, w := countedPostgres(b, conns)
			pids := backendPIDs(b, db.pool, conns)
			var callers atomic.Int64
			b.SetParallelism(max(1, conns/runtime.GOMAXPROCS(0))) // conns callers
			cpu0 := backendCPU(pids)
			trips0, statements0 := w.counts()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				owner := fmt.Sprint("owner-", callers.Add(1))
				var lines []cart.Line
				for n := 0; pb.Next(); n++ {
					// Ten products, each line's quantity set to the next
					// value: every change changes the cart.
					p := fmt.Sprint("p", n%10)
					op := cart.Op{Kind: cart.Set, ProductID: p, Quantity: int64(n/10%cart.MaxQuantity + 1)}
					lines, _, _ = setLine(lines, op)
					req := cart.Request{ID: fmt.Sprintf("%s-%d", owner, n), Hash: op.Hash()}
					if err := path.change(ctx, db, owner, req, op, lines); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			trips, statements := w.counts()
			b.ReportMetric(float64(trips-trips0)/float64(b.N), "trips/op")
			b.ReportMetric(float64(statements-statements0)/float64(b.N), "stmts/op")
			if cpu0 >= 0 {
				b.ReportMetric(float64(backendCPU(pids)-cpu0)/float64(time.Microsecond)/float64(b.N), "pg-µs/op")
			}
		})
	}
}

// setLine is the raw loop's own copy of a Set, to encode its lines.
func setLine(lines []cart.Line, op cart.Op) ([]cart.Line, bool, error) {
	c, changed, err := cart.Apply(cart.Cart{Lines: lines}, op, anyProduct{}, time.Now())
	return c.Lines, changed, err
}

// backendPIDs opens all n connections of pool and returns the process ids
// of the PostgreSQL backends serving them.
func backendPIDs(tb testing.TB, pool *pgxpool.Pool, n int) []int {
	tb.Helper()
	ctx := context.Background()
	var conns []*pgxpool.Conn
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	var pids []int
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			tb.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// backendCPU returns the user and system CPU time the processes pids have
// used, or -1 if /proc does not show them (a server on another host).
func backendCPU(pids []int) time.Duration {
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	var total time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// Fields after the command, which is in parentheses: utime and
		// stime are the 12th and 13th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			return -1
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+s) * tick
	}
	return total
}
