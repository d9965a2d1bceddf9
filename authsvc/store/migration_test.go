package store_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
	"github.com/tokencart/tokencart/internal/sqldb"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// TestMigrationKeepsRevocations brings a store of the first schema, with
// revoked tokens in it, to the current one: the revocations become token
// entries with their sequence numbers, so a replica's cursor stays valid
// and nothing revoked becomes valid again.
func TestMigrationKeepsRevocations(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T, m sqldb.Migrations) (dsn string, db *sql.DB){
		"sqlite": func(t *testing.T, m sqldb.Migrations) (string, *sql.DB) {
			dsn := filepath.Join(t.TempDir(), "authsvc.db")
			db, err := sqldb.OpenSQLite(t.Context(), dsn, m, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return dsn, db
		},
		"postgres": func(t *testing.T, m sqldb.Migrations) (string, *sql.DB) {
			dsn := sqldbtest.DSN(t)
			pool, err := sqldb.OpenPostgres(t.Context(), dsn, m, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return dsn, stdlib.OpenDBFromPool(pool)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			first, err := os.ReadFile(filepath.Join("migrations", name, "00001_init.sql"))
			if err != nil {
				t.Fatal(err)
			}
			m := sqldb.Migrations{FS: fstest.MapFS{"00001_init.sql": {Data: first}}, Table: "authsvc_schema_version", LockID: 0x61757468737663}
			dsn, db := setup(t, m)
			for i, exp := range []time.Duration{time.Hour, 2 * time.Hour} {
				if _, err := db.ExecContext(t.Context(),
					"INSERT INTO revocations (token_id, subject, expire_time, revoke_time) VALUES ($1, 'u1', $2, $3)",
					[]string{"old-a", "old-b"}[i], t0.Add(exp).UnixMicro(), t0.UnixMicro()); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()

			s, err := store.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("migrate: %v", err)
			}
			defer s.Close()
			revs := entries(t, s)
			if len(revs) != 2 || revs[0].Kind != authsvc.RevokedToken || revs[0].ID != "old-a" || revs[1].ID != "old-b" ||
				revs[0].Subject != "u1" || !revs[1].ExpireTime.Equal(t0.Add(2*time.Hour)) {
				t.Fatalf("migrated entries = %+v", revs)
			}
			if last, _ := s.LastRevocationSeq(t.Context()); last != revs[1].Seq {
				t.Errorf("LastRevocationSeq = %d, want %d", last, revs[1].Seq)
			}
			if ok, _ := s.IsRevoked(t.Context(), authsvc.TokenRef{TokenID: "old-a", Subject: "u1"}); !ok {
				t.Error("a token revoked before the migration is not revoked after it")
			}
			mustUser(t, s, "u2")
			if err := s.RevokeToken(t.Context(), authsvc.Revocation{Kind: authsvc.RevokedToken, ID: "new", Subject: "u2",
				ExpireTime: t0.Add(time.Hour), RevokeTime: t0}, policy(16)); err != nil {
				t.Fatal(err)
			}
			if got := findEntry(t, s, authsvc.RevokedToken, "new"); got.Seq <= revs[1].Seq {
				t.Errorf("first new entry numbered %d, not after %d", got.Seq, revs[1].Seq)
			}
		})
	}
}
