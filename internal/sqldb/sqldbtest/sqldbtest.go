// Package sqldbtest gives tests an empty PostgreSQL schema of their own
// (DSN), and a Proxy through which they reach it, to cut, stall or slow
// that connection.
//
// The server comes from TOKENCART_TEST_POSTGRES_DSN (.ci/run sets it to a
// fresh database); without it, a local server at 127.0.0.1:5432 is tried.
// When none answers, the test is skipped with a message saying so, except
// when CI=true, where a missing PostgreSQL fails the test.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the test server's DSN.
const EnvDSN = "TOKENCART_TEST_POSTGRES_DSN"

const fallbackDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=2"

// DSN creates a new schema, returns a DSN whose search_path is that schema,
// and drops the schema when the test ends.
func DSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		base = fallbackDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := "PostgreSQL not reachable (set " + EnvDSN + "): " + err.Error()
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("skipping: " + msg)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
