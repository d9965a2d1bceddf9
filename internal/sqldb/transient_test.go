package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/tokencart/tokencart/internal/sqldb"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// TestTransientPostgres classifies errors that a real PostgreSQL and pgx
// produce: the server or the connection failing is transient, a statement
// failing is not.
func TestTransientPostgres(t *testing.T) {
	dsn := sqldbtest.DSN(t)
	ctx := t.Context()
	connect := func(t *testing.T, dsn string) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	tests := []struct {
		name string
		err  func(t *testing.T) error
		want bool
	}{
		{"nothing listening", func(t *testing.T) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			_, err = pgx.Connect(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable&connect_timeout=2")
			return err
		}, true},
		{"connection cut mid-session", func(t *testing.T) error {
			db, viaProxy := sqldbtest.Proxy(t, dsn)
			c := connect(t, viaProxy)
			db.Disconnect()
			_, err := c.Exec(ctx, "SELECT 1")
			return err
		}, true},
		{"backend terminated by an administrator", func(t *testing.T) error {
			victim, admin := connect(t, dsn), connect(t, dsn)
			if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", victim.PgConn().PID()); err != nil {
				t.Fatal(err)
			}
			var err error
			// The termination is asynchronous; the next statement fails.
			for range 50 {
				if _, err = victim.Exec(ctx, "SELECT 1"); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			return err
		}, true},
		{"syntax error", func(t *testing.T) error {
			_, err := connect(t, dsn).Exec(ctx, "SELEC 1")
			return err
		}, false},
		{"unique violation", func(t *testing.T) error {
			c := connect(t, dsn)
			if _, err := c.Exec(ctx, "CREATE TABLE u (id INT PRIMARY KEY); INSERT INTO u VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			_, err := c.Exec(ctx, "INSERT INTO u VALUES (1)")
			return err
		}, false},
		{"no rows", func(t *testing.T) error {
			var n int
			return connect(t, dsn).QueryRow(ctx, "SELECT 1 WHERE false").Scan(&n)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if err == nil {
				t.Fatal("no error to classify")
			}
			t.Logf("%T: %v", err, err)
			if got := sqldb.Transient(fmt.Errorf("store: %w", err)); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

// TestTransientSQLite classifies a real SQLITE_BUSY (a writer holding the
// file past the busy timeout) as transient and a constraint failure not.
func TestTransientSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10)&_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	ctx := t.Context()
	holder, waiter := open(), open()
	if _, err := holder.ExecContext(ctx, "CREATE TABLE u (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO u VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, busy := waiter.BeginTx(ctx, nil)
	if busy == nil {
		t.Fatal("a second writer began while the first held the lock")
	}
	if !sqldb.Transient(fmt.Errorf("store: %w", busy)) {
		t.Errorf("Transient(%v) = false, want true", busy)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	_, dup := waiter.ExecContext(ctx, "INSERT INTO u VALUES (1)")
	if dup == nil {
		t.Fatal("duplicate key accepted")
	}
	if sqldb.Transient(dup) {
		t.Errorf("Transient(%v) = true, want false", dup)
	}
}

func TestTransientOther(t *testing.T) {
	for _, err := range []error{nil, errors.New("boom"), context.Canceled, fmt.Errorf("q: %w", context.DeadlineExceeded), sql.ErrNoRows} {
		if sqldb.Transient(err) {
			t.Errorf("Transient(%v) = true, want false", err)
		}
	}
}
