package sqldb_test

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/sqldb"
)

// openWatched opens a fresh SQLite database and watches its file.
func openWatched(t *testing.T) (db *sql.DB, file *sqldb.SQLiteFile, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "watched.db")
	db, err := sqldb.OpenSQLite(t.Context(), path, migrations(1), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if file, err = sqldb.WatchSQLiteFile(path); err != nil {
		t.Fatal(err)
	}
	return db, file, path
}

// wantReplaced fails t unless err is Check's error for path, transient.
func wantReplaced(t *testing.T, err error, path string) {
	t.Helper()
	var replaced *sqldb.FileReplacedError
	if !errors.As(err, &replaced) || replaced.Path != path {
		t.Fatalf("err = %v, want a *FileReplacedError for %s", err, path)
	}
	if !sqldb.Transient(fmt.Errorf("store: %w", err)) {
		t.Errorf("Transient(%v) = false, want true", err)
	}
	if !strings.Contains(err.Error(), "restart the process") {
		t.Errorf("error %q does not say what to do", err)
	}
}

func TestSQLiteFileCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		change       func(t *testing.T, path string)
		wantReplaced bool
	}{
		{"unchanged", func(*testing.T, string) {}, false},
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"deleted and recreated", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"replaced by a rename onto its path", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), "restored.db")
			if err := os.WriteFile(other, []byte("another database"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, file, path := openWatched(t)
			if _, err := db.ExecContext(t.Context(), "INSERT INTO things (id, name) VALUES (1, 'a')"); err != nil {
				t.Fatal(err)
			}
			tt.change(t, path)
			err := file.Check()
			if !tt.wantReplaced {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			wantReplaced(t, err, path)
		})
	}
}

// TestSQLiteFileCommit refuses a commit once the file is gone, and rolls
// the transaction back rather than leaving it holding the write lock.
func TestSQLiteFileCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, file, path := openWatched(t)
	commit := func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('a')"); err != nil {
			t.Fatal(err)
		}
		err = file.Commit(tx)
		if done := tx.Rollback(); !errors.Is(done, sql.ErrTxDone) {
			t.Errorf("transaction still open after Commit: Rollback() = %v", done)
		}
		return err
	}
	if err := commit(); err != nil {
		t.Fatalf("Commit on an intact file: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	wantReplaced(t, commit(), path)
	// The process still reads the deleted file: one row, the refused one
	// rolled back.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows = %d, %v; want 1", n, err)
	}
}

func TestSQLiteFileEdges(t *testing.T) {
	t.Parallel()
	if err := (*sqldb.SQLiteFile)(nil).Check(); err != nil {
		t.Errorf("nil Check() = %v, want nil (no SQLite file to guard)", err)
	}
	if _, err := sqldb.WatchSQLiteFile(filepath.Join(t.TempDir(), "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WatchSQLiteFile(missing) = %v, want fs.ErrNotExist", err)
	}
}
