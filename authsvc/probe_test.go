package authsvc_test

import (
	"database/sql"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/sqldb"
)

// storeProbe reads and edits a store with plain SQL, beside the service's
// own handle, so that tests see exactly what a request left behind (and can
// do what no RPC does, such as deleting an account).
type storeProbe struct {
	db *sql.DB
	// dumpQuery renders every row of stateTables as text, in one round
	// trip (the same SQL on both databases).
	dumpQuery string
}

// stateTables are the tables a refused request must leave as they were.
// login_failures and call_counts are apart: counting failed logins, and
// the calls that limits count, is the point of them.
var stateTables = []string{
	"users", "sessions", "revocation_entries", "revocation_head", "login_addresses",
	"signing_keys", "signing_key_head",
}

func openProbe(t testing.TB, dsn string) *storeProbe {
	t.Helper()
	driver, src := "pgx", dsn // registered by package store's pgx/v5/stdlib import
	if !sqldb.IsPostgres(dsn) {
		driver, src = "sqlite", "file:"+(&url.URL{Path: dsn}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		t.Fatalf("probe: open: %v", err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	var parts []string
	for _, table := range stateTables {
		row := "'" + table + "'"
		for _, c := range columns(t, db, table) {
			row += " || '|' || COALESCE(CAST(" + c + " AS TEXT), 'NULL')"
		}
		parts = append(parts, "SELECT "+row+" AS r FROM "+table)
	}
	return &storeProbe{db: db, dumpQuery: strings.Join(parts, " UNION ALL ") + " ORDER BY 1"}
}

// columns returns the names of table's columns.
func columns(t testing.TB, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table+" WHERE 1 = 0")
	if err != nil {
		t.Fatalf("probe: %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		t.Fatalf("probe: %s: %v", table, err)
	}
	return cols
}

// snapshot is the store's content: every row of stateTables, rendered,
// and the login failure counts.
type snapshot struct {
	rows     map[string][]string // by table
	failures int64               // SUM(failures) over every throttle key
}

func (p *storeProbe) snapshot(t testing.TB) snapshot {
	t.Helper()
	s := snapshot{rows: map[string][]string{}}
	rows, err := p.db.QueryContext(t.Context(), p.dumpQuery)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r []byte
		if err := rows.Scan(&r); err != nil {
			t.Fatalf("probe: %v", err)
		}
		table, _, _ := strings.Cut(string(r), "|")
		s.rows[table] = append(s.rows[table], string(r))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := p.db.QueryRowContext(t.Context(), "SELECT COALESCE(SUM(failures), 0) FROM login_failures").Scan(&s.failures); err != nil {
		t.Fatalf("probe: login failures: %v", err)
	}
	return s
}

// unchanged fails the test unless after holds the same rows as s in every
// state table, and failures more login failures.
func (s snapshot) unchanged(t testing.TB, after snapshot, failures int64) {
	t.Helper()
	for _, table := range stateTables {
		if !slices.Equal(s.rows[table], after.rows[table]) {
			t.Errorf("table %s changed: %d rows before, %d after", table, len(s.rows[table]), len(after.rows[table]))
		}
	}
	if got := after.failures - s.failures; got != failures {
		t.Errorf("login failures grew by %d, want %d", got, failures)
	}
}

// exec runs a statement with $n placeholders (both drivers take them).
func (p *storeProbe) exec(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	res, err := p.db.ExecContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("probe: %s: %v", query, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// longestThrottleKey is the length of the longest key login failures are
// counted under.
func (p *storeProbe) longestThrottleKey(t testing.TB) int {
	t.Helper()
	var n int
	if err := p.db.QueryRowContext(t.Context(), "SELECT COALESCE(MAX(LENGTH(throttle_key)), 0) FROM login_failures").Scan(&n); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return n
}

// failures returns the failed logins counted under the throttle keys that
// start with prefix.
func (p *storeProbe) failures(t testing.TB, prefix string) int {
	t.Helper()
	var n int
	if err := p.db.QueryRowContext(t.Context(),
		"SELECT COALESCE(SUM(failures), 0) FROM login_failures WHERE throttle_key LIKE $1", prefix+"%").Scan(&n); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return n
}

// rows returns the number of rows in table.
func (p *storeProbe) rows(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := p.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return n
}
