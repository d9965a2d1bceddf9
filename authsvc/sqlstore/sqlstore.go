// Package sqlstore implements authsvc.Store over SQLite (modernc.org/sqlite,
// the embedded default) and PostgreSQL (pgx), chosen by the DSN's scheme.
//
// Both dialects run the same SQL through database/sql: queries use $n
// placeholders, which PostgreSQL takes natively and the SQLite driver
// binds by number; times are Unix microseconds in BIGINT columns; "upsert"
// and RETURNING are written in the syntax both share. What differs lives in
// the per-dialect migrations and in the dialect struct.
//
// Concurrency, which is the point of a shared store:
//   - spending a refresh token is a conditional UPDATE ... WHERE used_time
//     IS NULL ... RETURNING: one of any number of concurrent spends gets
//     the row;
//   - key rotation is a compare-and-set on the one-row signing_key_head;
//   - revocations get sequence numbers in commit order. SQLite has one
//     writer at a time, so that holds by construction. PostgreSQL hands
//     out identity values at insert time, and two transactions can commit
//     in the other order, so a reader following "seq > cursor" could pass
//     a row that becomes visible later with a smaller seq. Every
//     transaction that inserts revocations therefore first takes a
//     transaction-scoped advisory lock, held to its commit: inserts, and so
//     sequence numbers and commits, happen one transaction at a time.
//     Revocations are rare enough for this to cost nothing that matters.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
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
	// revocationLockID serialises revocation inserts on PostgreSQL
	// ("authrvk" in ASCII).
	revocationLockID int64 = 0x6175746872766b
)

// dialect is what differs between the two databases at run time.
type dialect struct {
	name string
	// lockRevocations, when not empty, runs first in every transaction
	// that inserts revocations (see the package comment).
	lockRevocations string
}

var (
	sqlite   = dialect{name: "sqlite"}
	postgres = dialect{name: "postgres", lockRevocations: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", revocationLockID)}
)

// Store is an authsvc.Store in a SQL database.
type Store struct {
	db      *sql.DB
	pool    *pgxpool.Pool // nil for SQLite
	dialect dialect
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
		return &Store{db: stdlib.OpenDBFromPool(pool), pool: pool, dialect: postgres}, nil
	}
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		return nil, err
	}
	db, err := sqldb.OpenSQLite(ctx, dsn, sqldb.Migrations{FS: sub, Table: schemaTable, LockID: migrationLockID}, log)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, dialect: sqlite}, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.name }

// Close releases the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Ping implements authsvc.Store.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

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
	return tx.Commit()
}

// lockRevocations takes the dialect's revocation lock in tx.
func (s *Store) lockRevocations(ctx context.Context, tx *sql.Tx) error {
	if s.dialect.lockRevocations == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.dialect.lockRevocations)
	return err
}

func us(t time.Time) int64 { return t.UnixMicro() }

func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

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

// --- users

const userColumns = "id, email, password_hash, roles, create_time"

func scanUser(row interface{ Scan(...any) error }) (authsvc.User, error) {
	var u authsvc.User
	var roles string
	var created int64
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &roles, &created); err != nil {
		return authsvc.User{}, notFound(err)
	}
	u.Roles = strings.Fields(roles)
	u.CreateTime = fromUS(created)
	return u, nil
}

func joinRoles(roles []string) string {
	r := slices.Clone(roles)
	slices.Sort(r)
	return strings.Join(slices.Compact(r), " ")
}

// CreateUser implements authsvc.UserStore.
func (s *Store) CreateUser(ctx context.Context, u authsvc.User) error {
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO users ("+userColumns+") VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
		u.ID, u.Email, u.PasswordHash, joinRoles(u.Roles), us(u.CreateTime))
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("insert user: %w", authsvc.ErrConflict)
	}
	return nil
}

// UserByEmail implements authsvc.UserStore.
func (s *Store) UserByEmail(ctx context.Context, email string) (authsvc.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE email = $1", email))
	if err != nil {
		return authsvc.User{}, fmt.Errorf("user by email: %w", err)
	}
	return u, nil
}

// UserByID implements authsvc.UserStore.
func (s *Store) UserByID(ctx context.Context, id string) (authsvc.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
	if err != nil {
		return authsvc.User{}, fmt.Errorf("user by id: %w", err)
	}
	return u, nil
}

// SetPasswordHash implements authsvc.UserStore.
func (s *Store) SetPasswordHash(ctx context.Context, userID, oldHash, newHash string) error {
	_, err := s.db.ExecContext(ctx, "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2", userID, oldHash, newHash)
	if err != nil {
		return fmt.Errorf("update password hash: %w", err)
	}
	return nil
}

// AddRole implements authsvc.UserStore. Roles are one column, so the
// update is a compare-and-set on its old value, retried on a race.
func (s *Store) AddRole(ctx context.Context, email, role string) error {
	for range 10 {
		u, err := s.UserByEmail(ctx, email)
		if err != nil {
			return err
		}
		if slices.Contains(u.Roles, role) {
			return nil
		}
		res, err := s.db.ExecContext(ctx, "UPDATE users SET roles = $3 WHERE id = $1 AND roles = $2",
			u.ID, joinRoles(u.Roles), joinRoles(append(u.Roles, role)))
		if err != nil {
			return fmt.Errorf("add role: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
	}
	return fmt.Errorf("add role: %w: roles kept changing", authsvc.ErrConflict)
}

// --- sessions

// CreateSession implements authsvc.SessionStore.
func (s *Store) CreateSession(ctx context.Context, n authsvc.NewSession) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO refresh_families (id, user_id, create_time, expire_time) VALUES ($1, $2, $3, $4)",
			n.FamilyID, n.UserID, us(n.Now), us(later(n.Refresh.ExpireTime, n.AccessExpireTime))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO refresh_tokens (token_hash, family_id, expire_time) VALUES ($1, $2, $3)",
			n.Refresh.Hash, n.FamilyID, us(n.Refresh.ExpireTime)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO family_access_tokens (token_id, family_id, expire_time) VALUES ($1, $2, $3)",
			n.AccessTokenID, n.FamilyID, us(n.AccessExpireTime))
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RotateRefreshToken implements authsvc.SessionStore. The first UPDATE is
// the whole concurrency story: it spends the token only if it is unspent,
// so of concurrent calls one gets the row back and the rest none (on
// PostgreSQL the losers wait on the row lock, then re-check the condition
// against the winner's committed row). The second UPDATE takes the family's
// row lock, which RevokeFamily also takes first: a rotation either
// completes before a revocation of its family, whose revocations then
// include the new access token, or sees the family revoked and rolls back.
func (s *Store) RotateRefreshToken(ctx context.Context, r authsvc.RefreshRotation) (authsvc.User, error) {
	var u authsvc.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var family string
		if err := tx.QueryRowContext(ctx,
			`UPDATE refresh_tokens SET used_time = $2
			 WHERE token_hash = $1 AND used_time IS NULL AND expire_time > $2
			 RETURNING family_id`, r.OldHash, us(r.Now)).Scan(&family); err != nil {
			return notFound(err)
		}
		var userID string
		if err := tx.QueryRowContext(ctx,
			`UPDATE refresh_families
			 SET expire_time = CASE WHEN expire_time > $2 THEN expire_time ELSE $2 END
			 WHERE id = $1 AND revoke_time IS NULL
			 RETURNING user_id`, family, us(later(r.New.ExpireTime, r.AccessExpireTime))).Scan(&userID); err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO refresh_tokens (token_hash, family_id, expire_time) VALUES ($1, $2, $3)",
			r.New.Hash, family, us(r.New.ExpireTime)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO family_access_tokens (token_id, family_id, expire_time) VALUES ($1, $2, $3)",
			r.AccessTokenID, family, us(r.AccessExpireTime)); err != nil {
			return err
		}
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", userID))
		return err
	})
	if err != nil {
		return authsvc.User{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	return u, nil
}

// RefreshToken implements authsvc.SessionStore.
func (s *Store) RefreshToken(ctx context.Context, hash []byte) (authsvc.RefreshTokenInfo, error) {
	var info authsvc.RefreshTokenInfo
	var expire int64
	var used, revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT r.family_id, f.user_id, r.expire_time, r.used_time, f.revoke_time
		 FROM refresh_tokens r JOIN refresh_families f ON f.id = r.family_id
		 WHERE r.token_hash = $1`, hash).Scan(&info.FamilyID, &info.UserID, &expire, &used, &revoked)
	if err != nil {
		return authsvc.RefreshTokenInfo{}, fmt.Errorf("refresh token: %w", notFound(err))
	}
	info.ExpireTime, info.UsedTime, info.FamilyRevokeTime = fromUS(expire), fromNullUS(used), fromNullUS(revoked)
	return info, nil
}

// RevokeFamily implements authsvc.SessionStore.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE refresh_families SET revoke_time = $2 WHERE id = $1 AND revoke_time IS NULL", familyID, us(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // unknown or already revoked
		}
		if err := s.lockRevocations(ctx, tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO revocations (token_id, subject, expire_time, revoke_time)
			 SELECT a.token_id, f.user_id, a.expire_time, CAST($2 AS BIGINT)
			 FROM family_access_tokens a JOIN refresh_families f ON f.id = a.family_id
			 WHERE a.family_id = $1
			 ORDER BY a.token_id
			 ON CONFLICT DO NOTHING`, familyID, us(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke family: %w", err)
	}
	return nil
}

// --- revocations

// Revoke implements authsvc.RevocationStore.
func (s *Store) Revoke(ctx context.Context, r authsvc.Revocation) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockRevocations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO revocations (token_id, subject, expire_time, revoke_time) VALUES ($1, $2, $3, $4)
			 ON CONFLICT DO NOTHING`, r.TokenID, r.Subject, us(r.ExpireTime), us(r.RevokeTime))
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}

// IsRevoked implements authsvc.RevocationStore.
func (s *Store) IsRevoked(ctx context.Context, tokenID string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM revocations WHERE token_id = $1", tokenID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("is revoked: %w", err)
	}
	return true, nil
}

// RevocationsAfter implements authsvc.RevocationStore.
func (s *Store) RevocationsAfter(ctx context.Context, seq int64, expireAfter time.Time, limit int) ([]authsvc.Revocation, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, token_id, subject, expire_time, revoke_time FROM revocations
		 WHERE seq > $1 AND expire_time > $2 ORDER BY seq LIMIT $3`, seq, us(expireAfter), limit)
	if err != nil {
		return nil, fmt.Errorf("revocations after: %w", err)
	}
	defer rows.Close()
	var revs []authsvc.Revocation
	for rows.Next() {
		var r authsvc.Revocation
		var expire, revoked int64
		if err := rows.Scan(&r.Seq, &r.TokenID, &r.Subject, &expire, &revoked); err != nil {
			return nil, fmt.Errorf("revocations after: %w", err)
		}
		r.ExpireTime, r.RevokeTime = fromUS(expire), fromUS(revoked)
		revs = append(revs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revocations after: %w", err)
	}
	return revs, nil
}

// LastRevocationSeq implements authsvc.RevocationStore.
func (s *Store) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM revocations").Scan(&seq); err != nil {
		return 0, fmt.Errorf("last revocation: %w", err)
	}
	return seq, nil
}

// --- signing keys

// SigningKeys implements authsvc.KeyStore. The head row is read with the
// keys, in one statement, so the two agree.
func (s *Store) SigningKeys(ctx context.Context) ([]authsvc.StoredKey, string, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT k.id, k.public_key, k.private_key, k.private_key_encryption, k.create_time, k.activate_time, h.newest_key_id
		 FROM signing_keys k CROSS JOIN signing_key_head h
		 WHERE h.id = 1
		 ORDER BY k.activate_time, k.create_time, k.id`)
	if err != nil {
		return nil, "", fmt.Errorf("signing keys: %w", err)
	}
	defer rows.Close()
	var keys []authsvc.StoredKey
	var newest string
	for rows.Next() {
		var k authsvc.StoredKey
		var created, activate int64
		if err := rows.Scan(&k.ID, &k.PublicKey, &k.PrivateKey, &k.Encryption, &created, &activate, &newest); err != nil {
			return nil, "", fmt.Errorf("signing keys: %w", err)
		}
		k.CreateTime, k.ActivateTime = fromUS(created), fromUS(activate)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("signing keys: %w", err)
	}
	return keys, newest, nil
}

// AddSigningKey implements authsvc.KeyStore.
func (s *Store) AddSigningKey(ctx context.Context, k authsvc.StoredKey, newestID string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE signing_key_head SET newest_key_id = $1 WHERE id = 1 AND newest_key_id = $2", k.ID, newestID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return authsvc.ErrConflict
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO signing_keys (id, public_key, private_key, private_key_encryption, create_time, activate_time)
			 VALUES ($1, $2, $3, $4, $5, $6)`,
			k.ID, k.PublicKey, k.PrivateKey, k.Encryption, us(k.CreateTime), us(k.ActivateTime))
		return err
	})
	if err != nil {
		return fmt.Errorf("add signing key: %w", err)
	}
	return nil
}

// DeleteSigningKeys implements authsvc.KeyStore.
func (s *Store) DeleteSigningKeys(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := s.db.ExecContext(ctx,
		`DELETE FROM signing_keys WHERE id IN (`+placeholders(1, len(ids))+`)
		 AND id <> (SELECT newest_key_id FROM signing_key_head WHERE id = 1)`, args...)
	if err != nil {
		return fmt.Errorf("delete signing keys: %w", err)
	}
	return nil
}

// --- login throttle

// RecordLoginFailure implements authsvc.ThrottleStore.
func (s *Store) RecordLoginFailure(ctx context.Context, keys []string, now, windowStart time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO login_failures (throttle_key, failures, last_failure_time) VALUES ($1, 1, $2)
				 ON CONFLICT (throttle_key) DO UPDATE SET
				   failures = CASE WHEN login_failures.last_failure_time < $3 THEN 1 ELSE login_failures.failures + 1 END,
				   last_failure_time = $2`, k, us(now), us(windowStart)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// LoginFailures implements authsvc.ThrottleStore.
func (s *Store) LoginFailures(ctx context.Context, keys []string, since time.Time) ([]authsvc.LoginFailures, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := []any{us(since)}
	for _, k := range keys {
		args = append(args, k)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT throttle_key, failures, last_failure_time FROM login_failures
		 WHERE last_failure_time >= $1 AND throttle_key IN (`+placeholders(2, len(keys))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	defer rows.Close()
	var out []authsvc.LoginFailures
	for rows.Next() {
		var f authsvc.LoginFailures
		var last int64
		if err := rows.Scan(&f.Key, &f.Failures, &last); err != nil {
			return nil, fmt.Errorf("login failures: %w", err)
		}
		f.Last = fromUS(last)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("login failures: %w", err)
	}
	return out, nil
}

// ResetLoginFailures implements authsvc.ThrottleStore.
func (s *Store) ResetLoginFailures(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM login_failures WHERE throttle_key = $1", key); err != nil {
		return fmt.Errorf("reset login failures: %w", err)
	}
	return nil
}

// --- maintenance

// Prune implements authsvc.Store.
func (s *Store) Prune(ctx context.Context, now, revokedBefore, failuresBefore time.Time) error {
	for _, q := range []struct {
		sql string
		arg time.Time
	}{
		{"DELETE FROM refresh_families WHERE expire_time < $1", now}, // cascades to its tokens
		{"DELETE FROM refresh_tokens WHERE expire_time < $1", now},
		{"DELETE FROM family_access_tokens WHERE expire_time < $1", revokedBefore},
		{"DELETE FROM revocations WHERE expire_time < $1 AND seq < (SELECT MAX(seq) FROM revocations)", revokedBefore},
		{"DELETE FROM login_failures WHERE last_failure_time < $1", failuresBefore},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, us(q.arg)); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}
