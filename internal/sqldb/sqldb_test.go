package sqldb_test

import (
	"context"
	"database/sql"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokencart/tokencart/internal/sqldb"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

func migrations(lockID int64) sqldb.Migrations {
	return sqldb.Migrations{
		FS: fs.FS(fstest.MapFS{
			"00001_things.sql": {Data: []byte("-- +goose Up\nCREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n")},
			"00002_more.sql":   {Data: []byte("-- +goose Up\nALTER TABLE things ADD COLUMN note TEXT;\n")},
		}),
		Table:  "test_schema_version",
		LockID: lockID,
	}
}

func TestIsPostgres(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://u@h/db", true},
		{"postgresql://u@h/db", true},
		{"var/catalog.db", false},
		{"/tmp/x.sqlite", false},
	}
	for _, tt := range tests {
		if got := sqldb.IsPostgres(tt.dsn); got != tt.want {
			t.Errorf("IsPostgres(%q) = %v, want %v", tt.dsn, got, tt.want)
		}
	}
}

// TestConcurrentStartsMigrateOnce opens the same database from several
// goroutines at once, as replicas starting together do: every open must
// succeed and the schema must be applied exactly once.
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	const replicas = 4
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "test.db")
		dbs := make([]*sql.DB, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() { dbs[i], errs[i] = sqldb.OpenSQLite(ctx, path, migrations(1), log) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			defer dbs[i].Close()
		}
		if _, err := dbs[0].ExecContext(ctx, "INSERT INTO things (id, name, note) VALUES (1, 'a', 'b')"); err != nil {
			t.Fatalf("schema not applied: %v", err)
		}
		var mode string
		if err := dbs[1].QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := sqldbtest.DSN(t)
		pools := make([]*pgxpool.Pool, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() { pools[i], errs[i] = sqldb.OpenPostgres(ctx, dsn, migrations(7001), log) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			defer pools[i].Close()
		}
		if _, err := pools[0].Exec(ctx, "INSERT INTO things (id, name, note) VALUES (1, 'a', 'b')"); err != nil {
			t.Fatalf("schema not applied: %v", err)
		}
	})
}

func TestOpenPostgresHidesDSN(t *testing.T) {
	_, err := sqldb.OpenPostgres(context.Background(), "postgres://user:s3cret@%zz/db", migrations(1), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("bad DSN accepted")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Errorf("error %q leaks the DSN", got)
	}
}
