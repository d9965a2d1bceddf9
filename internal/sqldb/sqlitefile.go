package sqldb

import (
	"database/sql"
	"fmt"
	"os"
)

// SQLiteFile guards against a SQLite database file being deleted or
// replaced (rm, or a restore renaming another file onto the path) under a
// running process. The process's connections keep the old file open, so
// SQLite would go on acknowledging writes that no later open of the path
// sees, and answering pings. SQLiteFile remembers which file the path named
// when the database was opened; Check, one stat, says whether it still
// does. A nil *SQLiteFile (a store on PostgreSQL) always passes.
type SQLiteFile struct {
	path string
	// opened is the file's identity when watched: device and inode on
	// Unix, volume and file index on Windows, as os.SameFile compares.
	opened os.FileInfo
}

// FileReplacedError is the error of SQLiteFile.Check: the path no longer
// names the database file the process opened. Transient reports it, so
// services answer Unavailable; only restarting the process, which reopens
// the path, recovers.
type FileReplacedError struct {
	// Path is the database file's path.
	Path string
	// Err is why the path could not be examined (for example
	// fs.ErrNotExist), or nil when it names another file.
	Err error
}

func (e *FileReplacedError) Error() string {
	msg := "SQLite database file " + e.Path + " was deleted or replaced while the process was running; restart the process"
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

// Unwrap returns the stat error, if any.
func (e *FileReplacedError) Unwrap() error { return e.Err }

// WatchSQLiteFile records the identity of the database file at path; call
// it right after OpenSQLite, with the same path.
func WatchSQLiteFile(path string) (*SQLiteFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: watch database file: %w", err)
	}
	// On Windows the identity is read lazily, at the first comparison, from
	// whatever the path names then: compare once now to pin it.
	os.SameFile(fi, fi)
	return &SQLiteFile{path: path, opened: fi}, nil
}

// Check returns a *FileReplacedError if the path no longer exists or now
// names a different file from the one that was opened. The old file cannot
// be removed from disk while the process holds it open, so its identity
// cannot be reused by the replacement.
func (f *SQLiteFile) Check() error {
	if f == nil {
		return nil
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		return &FileReplacedError{Path: f.path, Err: err}
	}
	if !os.SameFile(f.opened, fi) {
		return &FileReplacedError{Path: f.path}
	}
	return nil
}

// Commit commits tx unless the file was deleted or replaced: it checks
// before committing, rolling tx back if that fails, and again after, so
// that a commit which may have gone to a lost file is reported as failed
// (Transient) rather than acknowledged. Callers retry with their
// idempotency keys, so an error after a commit that did land is safe.
func (f *SQLiteFile) Commit(tx *sql.Tx) error {
	if err := f.Check(); err != nil {
		_ = tx.Rollback() // the check's error is the one to report
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return f.Check()
}
