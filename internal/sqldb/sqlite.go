package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite settings, chosen for several replica processes sharing one file:
//   - busy_timeout comes first, so that even switching to WAL (which needs
//     a moment of exclusive access) waits for a replica opening the same
//     file instead of failing;
//   - WAL lets readers proceed while one writer commits;
//   - busy_timeout makes a writer wait for the lock instead of failing
//     with SQLITE_BUSY while another process commits;
//   - _txlock=immediate takes the write lock at BEGIN, so a read-then-write
//     transaction cannot deadlock against another and fail mid-way;
//   - synchronous=NORMAL is durable across process crashes in WAL mode
//     (an OS crash may lose the last commits, never corrupt the file);
//   - foreign_keys on, as the schema relies on them.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"

// sqliteMaxConns bounds connections per process: SQLite has one writer at a
// time, so more connections only queue on its lock, while a few let reads
// run beside a write.
const sqliteMaxConns = 4

// OpenSQLite opens (creating it and its directory when needed) the SQLite
// database at path and applies m.
func OpenSQLite(ctx context.Context, path string, m Migrations, log *slog.Logger) (*sql.DB, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: create directory: %w", err)
		}
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrateSQLite(ctx, db, path, m, log); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func migrateSQLite(ctx context.Context, db *sql.DB, path string, m Migrations, log *slog.Logger) error {
	// goose has no lock for SQLite: a file lock beside the database keeps
	// two replicas starting together from both applying a migration.
	lock := flock.New(path + ".migrate.lock")
	if _, err := lock.TryLockContext(ctx, lockRetry); err != nil {
		return fmt.Errorf("sqlite: migration lock: %w", err)
	}
	defer lock.Unlock()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, m.FS,
		goose.WithTableName(m.Table), goose.WithLogger(slogAdapter{log}), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return runMigrations(ctx, p)
}
