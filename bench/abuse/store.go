package abuse

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// storeReading is the state of authsvc's SQLite store.
type storeReading struct {
	bytes                                   int64    // pages in use × page size
	sessions, revocationEntries, callCounts int64    // rows
	entriesByKind                           [4]int64 // revocation entries: 1 token, 2 session, 3 account
	attackerSessions                        int64    // rows of the attacker's sessions
}

// readStore opens authsvc's SQLite file read-only (it sees the committed
// contents of the WAL too) and reads its size and row counts. The
// connection is closed at once, so that it holds no snapshot that would
// keep authsvc from checkpointing.
func readStore(ctx context.Context, path, attackerID string) (storeReading, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return storeReading{}, fmt.Errorf("open authsvc's store: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var r storeReading
	var pages, free, pageSize int64
	for _, q := range []struct {
		sql  string
		args []any
		dst  *int64
	}{
		{"PRAGMA page_count", nil, &pages},
		{"PRAGMA freelist_count", nil, &free},
		{"PRAGMA page_size", nil, &pageSize},
		{"SELECT COUNT(*) FROM sessions", nil, &r.sessions},
		{"SELECT COUNT(*) FROM revocation_entries", nil, &r.revocationEntries},
		{"SELECT COUNT(*) FROM call_counts", nil, &r.callCounts},
		{"SELECT COUNT(*) FROM sessions WHERE user_id = ?", []any{attackerID}, &r.attackerSessions},
	} {
		if err := db.QueryRowContext(ctx, q.sql, q.args...).Scan(q.dst); err != nil {
			return storeReading{}, fmt.Errorf("read authsvc's store (%s): %w", q.sql, err)
		}
	}
	r.bytes = (pages - free) * pageSize
	rows, err := db.QueryContext(ctx, "SELECT kind, COUNT(*) FROM revocation_entries GROUP BY kind")
	if err != nil {
		return storeReading{}, fmt.Errorf("read authsvc's store (entries by kind): %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, n int64
		if err := rows.Scan(&kind, &n); err != nil {
			return storeReading{}, fmt.Errorf("read authsvc's store (entries by kind): %w", err)
		}
		if kind >= 0 && kind < int64(len(r.entriesByKind)) {
			r.entriesByKind[kind] = n
		}
	}
	if err := rows.Err(); err != nil {
		return storeReading{}, fmt.Errorf("read authsvc's store (entries by kind): %w", err)
	}
	return r, nil
}
