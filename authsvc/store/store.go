// Package store implements authsvc.Store over SQLite (modernc.org/sqlite,
// the embedded default) and PostgreSQL (pgx), chosen by the DSN's scheme.
//
// Both dialects run the same SQL through database/sql: queries use $n
// placeholders, which PostgreSQL takes natively and the SQLite driver
// binds by number; times are Unix microseconds in BIGINT columns; "upsert"
// and RETURNING are written in the syntax both share. What differs lives in
// the per-dialect migrations.
//
// Concurrency, which is the point of a shared store:
//   - spending a refresh token is one conditional UPDATE of the session's
//     row (WHERE refresh_hash = the presented token's ... RETURNING): of
//     any number of concurrent spends, one gets the row;
//   - key rotation is a compare-and-set on the one-row signing_key_head;
//   - revocation entries get sequence numbers in commit order: every
//     transaction that writes them first increments the one-row
//     revocation_head, whose row lock it holds to its commit, so such
//     transactions (and their sequence numbers) follow one another. On
//     SQLite, which has one writer at a time, that holds by construction.
//     Revocations are rare enough for this to cost nothing that matters.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/internal/sqldb"
)

//go:embed migrations
var migrations embed.FS

const (
	// schemaTable records authsvc's applied migrations.
	schemaTable = "authsvc_schema_version"
	// migrationLockID serialises authsvc's migrations on PostgreSQL
	// ("authsvc" in ASCII).
	migrationLockID int64 = 0x61757468737663
)

// Store is an authsvc.Store in a SQL database.
type Store struct {
	db      *sql.DB
	pool    *pgxpool.Pool     // nil for SQLite
	file    *sqldb.SQLiteFile // nil for PostgreSQL
	dialect string
}

var _ authsvc.Store = (*Store)(nil)

// Open opens the store named by dsn (a postgres:// URL or a SQLite file
// path) and brings its schema up to date. Replicas may open one store at
// the same moment: migrations run once, under a lock.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if sqldb.IsPostgres(dsn) {
		sub, err := fs.Sub(migrations, "migrations/postgres")
		if err != nil {
			return nil, err
		}
		pool, err := sqldb.OpenPostgres(ctx, dsn, sqldb.Migrations{FS: sub, Table: schemaTable, LockID: migrationLockID}, log)
		if err != nil {
			return nil, err
		}
		return &Store{db: stdlib.OpenDBFromPool(pool), pool: pool, dialect: "postgres"}, nil
	}
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		return nil, err
	}
	db, err := sqldb.OpenSQLite(ctx, dsn, sqldb.Migrations{FS: sub, Table: schemaTable, LockID: migrationLockID}, log)
	if err != nil {
		return nil, err
	}
	// A database file deleted or replaced under the process must fail
	// readiness and writes, not take writes that a restart loses.
	file, err := sqldb.WatchSQLiteFile(dsn)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, file: file, dialect: "sqlite"}, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Close releases the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Ping implements authsvc.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.file.Check(); err != nil {
		return err
	}
	return s.db.PingContext(ctx)
}

// inTx runs fn in a transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.file.Commit(tx)
}

// exec runs a statement that writes outside a transaction. On SQLite the
// file is checked before and after, so a write to a replaced file is not
// reported as done.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := s.file.Check(); err != nil {
		return nil, err
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	if err := s.file.Check(); err != nil {
		return nil, err
	}
	return res, nil
}

func us(t time.Time) int64 { return t.UnixMicro() }

func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

// fromUSOrZero is fromUS, with 0 as the zero time.
func fromUSOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromUS(v)
}

func fromNullUS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromUS(v.Int64)
}

// notFound maps sql.ErrNoRows to authsvc.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return authsvc.ErrNotFound
	}
	return err
}

// placeholders returns "$from, $from+1, ..." for n values.
func placeholders(from, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(p, ", ")
}
