package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokencart/tokencart/authsvc"
)

// CreateSession implements authsvc.SessionStore.
func (s *Store) CreateSession(ctx context.Context, n authsvc.NewSession) error {
	_, err := s.exec(ctx,
		`INSERT INTO sessions (id, user_id, create_time, refresh_generation, refresh_hash, refresh_expire_time,
		                       refresh_window_end, refresh_count, access_expire_time, expire_time)
		 VALUES ($1, $2, $3, 1, $4, $5, $3, 0, $6, $7)`,
		n.ID, n.UserID, us(n.CreateTime), n.RefreshHash, us(n.RefreshExpireTime), us(n.AccessExpireTime),
		max(us(n.RefreshExpireTime), us(n.AccessExpireTime)))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// RotateRefreshToken implements authsvc.SessionStore. The UPDATE is the
// whole concurrency story: it matches only while the presented token is the
// session's current one, the session exists (is not revoked) and is under
// its rotation limit, so of concurrent calls one gets the row back and the
// rest none (on PostgreSQL the losers wait on the row lock, then re-check
// the condition against the winner's committed row). A revocation deletes
// the row under the same lock: a rotation either completes before it, and
// the revocation entry lasts until the new access token expires, or finds
// no row.
func (s *Store) RotateRefreshToken(ctx context.Context, r authsvc.RefreshRotation) (authsvc.User, error) {
	now := us(r.Now)
	var u authsvc.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var userID string
		if err := tx.QueryRowContext(ctx,
			`UPDATE sessions SET
			   refresh_count = CASE WHEN refresh_window_end <= $5 THEN 1 ELSE refresh_count + 1 END,
			   refresh_window_end = CASE WHEN refresh_window_end <= $5 THEN $6 ELSE refresh_window_end END,
			   prev_refresh_hash = refresh_hash,
			   prev_used_time = $5,
			   refresh_hash = $4,
			   refresh_generation = refresh_generation + 1,
			   refresh_expire_time = $7,
			   access_expire_time = $8,
			   expire_time = $9
			 WHERE id = $1 AND refresh_generation = $2 AND refresh_hash = $3
			   AND refresh_expire_time > $5
			   AND (refresh_window_end <= $5 OR refresh_count < $10)
			 RETURNING user_id`,
			r.SessionID, r.Generation, r.OldHash, r.NewHash, now, us(r.Now.Add(r.Window)),
			us(r.RefreshExpireTime), us(r.AccessExpireTime), max(us(r.RefreshExpireTime), us(r.AccessExpireTime)),
			r.Limit).Scan(&userID); err != nil {
			return notFound(err)
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

// Session implements authsvc.SessionStore.
func (s *Store) Session(ctx context.Context, id string) (authsvc.Session, error) {
	var ss authsvc.Session
	var created, refreshExpire, windowEnd, count, accessExpire int64
	var prevUsed sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, user_id, create_time, refresh_generation, refresh_hash, refresh_expire_time,
		        prev_refresh_hash, prev_used_time, refresh_window_end, refresh_count, access_expire_time
		 FROM sessions WHERE id = $1`, id).Scan(
		&ss.ID, &ss.UserID, &created, &ss.RefreshGeneration, &ss.RefreshHash, &refreshExpire,
		&ss.PrevRefreshHash, &prevUsed, &windowEnd, &count, &accessExpire)
	if err != nil {
		return authsvc.Session{}, fmt.Errorf("session: %w", notFound(err))
	}
	ss.CreateTime, ss.RefreshExpireTime, ss.AccessExpireTime = fromUS(created), fromUS(refreshExpire), fromUS(accessExpire)
	ss.PrevUsedTime = fromNullUS(prevUsed)
	ss.Rotations = authsvc.CallCount{Calls: int(count), WindowEnd: fromUS(windowEnd)}
	return ss, nil
}

// LimitSessions implements authsvc.SessionStore.
func (s *Store) LimitSessions(ctx context.Context, userID string, limit int, now time.Time, p authsvc.RevocationPolicy) (authsvc.User, int, error) {
	var u authsvc.User
	revoked := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		evict, err := oldSessions(ctx, tx, userID, max(limit-1, 0))
		if err != nil {
			return err
		}
		for _, id := range evict {
			seq, err := nextRevocationSeq(ctx, tx)
			if err != nil {
				return err
			}
			switch _, err := revokeSessionRow(ctx, tx, id, now, seq); {
			case errors.Is(err, authsvc.ErrNotFound):
			case err != nil:
				return err
			default:
				revoked++
			}
		}
		if len(evict) > 0 {
			if err := s.capAccount(ctx, tx, userID, now, p); err != nil {
				return err
			}
		}
		u, err = scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", userID))
		return err
	})
	if err != nil {
		return authsvc.User{}, 0, fmt.Errorf("limit sessions: %w", err)
	}
	return u, revoked, nil
}

// oldSessions returns the ids of the user's sessions but the newest keep,
// at most a thousand of them (a login trims the rest later).
func oldSessions(ctx context.Context, tx *sql.Tx, userID string, keep int) ([]string, error) {
	rows, err := tx.QueryContext(ctx,
		"SELECT id FROM sessions WHERE user_id = $1 ORDER BY create_time DESC, id DESC LIMIT 1000 OFFSET $2", userID, keep)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
