package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/internal/token"
)

const revocationColumns = "seq, kind, entry_id, subject, session_id, sessions_before, expire_time, revoke_time"

func scanRevocation(row interface{ Scan(...any) error }) (authsvc.Revocation, error) {
	var r authsvc.Revocation
	var before, expire, revoked int64
	if err := row.Scan(&r.Seq, &r.Kind, &r.ID, &r.Subject, &r.SessionID, &before, &expire, &revoked); err != nil {
		return authsvc.Revocation{}, notFound(err)
	}
	r.SessionsBefore, r.ExpireTime, r.RevokeTime = fromUSOrZero(before), fromUS(expire), fromUS(revoked)
	return r, nil
}

// nextRevocationSeq takes the next sequence number in tx. The UPDATE holds
// the head row's lock until tx ends, so transactions that write revocation
// entries run one after another and commit in sequence order.
func nextRevocationSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, "UPDATE revocation_head SET seq = seq + 1 WHERE id = 1 RETURNING seq").Scan(&seq); err != nil {
		return 0, fmt.Errorf("next revocation sequence: %w", err)
	}
	return seq, nil
}

// sessionTime is the creation time encoded in sid, in microseconds; 0 when
// sid carries none.
func sessionTime(sid string) int64 {
	if t, ok := token.SessionTime(sid); ok {
		return us(t)
	}
	return 0
}

// insertEntry records r (Kind RevokedToken or RevokedSession) in tx under
// seq; an entry for the same token or session is left as it is.
func insertEntry(ctx context.Context, tx *sql.Tx, r authsvc.Revocation, seq int64) (sql.Result, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO revocation_entries (kind, entry_id, subject, session_id, session_time, sessions_before, expire_time, revoke_time, seq)
		 VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)
		 ON CONFLICT (kind, entry_id) DO NOTHING`,
		int(r.Kind), r.ID, r.Subject, r.SessionID, sessionTime(r.SessionID), us(r.ExpireTime), us(r.RevokeTime), seq)
	if err != nil {
		return nil, fmt.Errorf("insert revocation: %w", err)
	}
	return res, nil
}

// RevokeSession implements authsvc.RevocationStore.
func (s *Store) RevokeSession(ctx context.Context, r authsvc.Revocation, p authsvc.RevocationPolicy) (bool, error) {
	now := r.RevokeTime
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		seq, err := nextRevocationSeq(ctx, tx)
		if err != nil {
			return err
		}
		userID, err := revokeSessionRow(ctx, tx, r.ID, now, seq)
		switch {
		case errors.Is(err, authsvc.ErrNotFound):
			// Revoked already, or gone: a gone session with a known owner
			// still gets its entry, unless something covers it.
			if r.Subject == "" {
				return errNothingToDo
			}
			var cutoff int64
			err := tx.QueryRowContext(ctx, "SELECT sessions_revoked_before FROM users WHERE id = $1", r.Subject).Scan(&cutoff)
			switch {
			case err == nil && cutoff > sessionTime(r.ID):
				return errNothingToDo
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
			e := authsvc.Revocation{Kind: authsvc.RevokedSession, ID: r.ID, Subject: r.Subject, SessionID: r.ID,
				ExpireTime: r.ExpireTime, RevokeTime: now}
			res, err := insertEntry(ctx, tx, e, seq)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return errNothingToDo // its entry exists
			}
			userID = r.Subject
		case err != nil:
			return err
		}
		return s.capAccount(ctx, tx, userID, now, p)
	})
	if errors.Is(err, errNothingToDo) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoke session: %w", err)
	}
	return true, nil
}

// revokeSessionRow deletes session id in tx and records its entry under
// seq, lasting until the newest of its access tokens expires. It returns
// the session's user, or ErrNotFound when there is no such session.
func revokeSessionRow(ctx context.Context, tx *sql.Tx, id string, now time.Time, seq int64) (string, error) {
	var userID string
	var accessExpire int64
	err := tx.QueryRowContext(ctx, "DELETE FROM sessions WHERE id = $1 RETURNING user_id, access_expire_time", id).Scan(&userID, &accessExpire)
	if err != nil {
		return "", notFound(err)
	}
	e := authsvc.Revocation{Kind: authsvc.RevokedSession, ID: id, Subject: userID, SessionID: id,
		ExpireTime: fromUS(accessExpire), RevokeTime: now}
	if _, err := insertEntry(ctx, tx, e, seq); err != nil {
		return "", err
	}
	return userID, nil
}

// errNothingToDo rolls back a transaction that found nothing to change
// (and so must not use up a sequence number).
var errNothingToDo = errors.New("nothing to do")

// RevokeToken implements authsvc.RevocationStore.
func (s *Store) RevokeToken(ctx context.Context, r authsvc.Revocation, p authsvc.RevocationPolicy) error {
	if r.Kind != authsvc.RevokedToken {
		return fmt.Errorf("revoke token: kind %d is not a token", r.Kind)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		seq, err := nextRevocationSeq(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := insertEntry(ctx, tx, r, seq); err != nil {
			return err
		}
		return s.capAccount(ctx, tx, r.Subject, r.RevokeTime, p)
	})
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// capAccount revokes the whole account when it holds more than
// p.MaxEntriesPerAccount live session and token entries.
func (s *Store) capAccount(ctx context.Context, tx *sql.Tx, userID string, now time.Time, p authsvc.RevocationPolicy) error {
	var n int
	if err := tx.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM revocation_entries WHERE subject = $1 AND kind IN (1, 2) AND expire_time > $2",
		userID, us(now)).Scan(&n); err != nil {
		return fmt.Errorf("count revocations: %w", err)
	}
	if n <= p.MaxEntriesPerAccount {
		return nil
	}
	_, err := s.revokeAccount(ctx, tx, userID, now, p)
	return err
}

// RevokeAccount implements authsvc.RevocationStore.
func (s *Store) RevokeAccount(ctx context.Context, userID string, now time.Time, p authsvc.RevocationPolicy) (authsvc.Revocation, error) {
	var r authsvc.Revocation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = s.revokeAccount(ctx, tx, userID, now, p)
		return err
	})
	if err != nil {
		return authsvc.Revocation{}, fmt.Errorf("revoke account: %w", err)
	}
	return r, nil
}

// revokeAccount does RevokeAccount's work in tx. The cutoff is now, or just
// after the newest session of the account if that is later (a replica's
// clock ahead of this one's): every session that exists is covered. It
// never moves back. Session and token entries of the account that it
// covers are deleted: the account entry, renumbered after them, replaces
// them for every subscriber.
func (s *Store) revokeAccount(ctx context.Context, tx *sql.Tx, userID string, now time.Time, p authsvc.RevocationPolicy) (authsvc.Revocation, error) {
	seq, err := nextRevocationSeq(ctx, tx)
	if err != nil {
		return authsvc.Revocation{}, err
	}
	var prevCutoff, newestSession, newestAccess int64
	if err := tx.QueryRowContext(ctx, "SELECT sessions_revoked_before FROM users WHERE id = $1", userID).Scan(&prevCutoff); err != nil {
		return authsvc.Revocation{}, fmt.Errorf("find account: %w", notFound(err))
	}
	if err := tx.QueryRowContext(ctx,
		"SELECT COALESCE(MAX(create_time), 0), COALESCE(MAX(access_expire_time), 0) FROM sessions WHERE user_id = $1",
		userID).Scan(&newestSession, &newestAccess); err != nil {
		return authsvc.Revocation{}, fmt.Errorf("newest session: %w", err)
	}
	var prevExpire int64
	err = tx.QueryRowContext(ctx, "SELECT expire_time FROM revocation_entries WHERE kind = 3 AND entry_id = $1", userID).Scan(&prevExpire)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return authsvc.Revocation{}, fmt.Errorf("account entry: %w", err)
	}
	cutoff := max(us(now), newestSession+1, prevCutoff)
	expire := max(us(p.AccountExpire), newestAccess, prevExpire)
	if _, err := tx.ExecContext(ctx, "UPDATE users SET sessions_revoked_before = $2 WHERE id = $1", userID, cutoff); err != nil {
		return authsvc.Revocation{}, fmt.Errorf("set account cutoff: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = $1 AND create_time < $2", userID, cutoff); err != nil {
		return authsvc.Revocation{}, fmt.Errorf("revoke sessions: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO revocation_entries (kind, entry_id, subject, session_id, session_time, sessions_before, expire_time, revoke_time, seq)
		 VALUES (3, $1, $1, '', 0, $2, $3, $4, $5)
		 ON CONFLICT (kind, entry_id) DO UPDATE SET
		   sessions_before = $2, expire_time = $3, revoke_time = $4, seq = $5`,
		userID, cutoff, expire, us(now), seq); err != nil {
		return authsvc.Revocation{}, fmt.Errorf("record account revocation: %w", err)
	}
	// Entries of sessions created before the cutoff are covered; token
	// entries without a session time are kept (the cutoff covers those by
	// iat, which the store does not keep).
	if _, err := tx.ExecContext(ctx,
		"DELETE FROM revocation_entries WHERE subject = $1 AND kind IN (1, 2) AND session_time > 0 AND session_time < $2",
		userID, cutoff); err != nil {
		return authsvc.Revocation{}, fmt.Errorf("delete covered revocations: %w", err)
	}
	return authsvc.Revocation{
		Seq: seq, Kind: authsvc.RevokedAccount, ID: userID, Subject: userID,
		SessionsBefore: fromUS(cutoff), ExpireTime: fromUS(expire), RevokeTime: now,
	}, nil
}

// IsRevoked implements authsvc.RevocationStore.
func (s *Store) IsRevoked(ctx context.Context, t authsvc.TokenRef) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx,
		`SELECT 1 FROM revocation_entries
		 WHERE (kind = 1 AND entry_id = $1)
		    OR (kind = 2 AND entry_id = $2 AND $2 <> '')
		    OR (kind = 3 AND entry_id = $3 AND sessions_before > $4)
		 LIMIT 1`, t.TokenID, t.SessionID, t.Subject, us(t.CoveredBefore)).Scan(&one)
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
		"SELECT "+revocationColumns+" FROM revocation_entries WHERE seq > $1 AND expire_time > $2 ORDER BY seq LIMIT $3",
		seq, us(expireAfter), limit)
	if err != nil {
		return nil, fmt.Errorf("revocations after: %w", err)
	}
	defer rows.Close()
	var revs []authsvc.Revocation
	for rows.Next() {
		r, err := scanRevocation(rows)
		if err != nil {
			return nil, fmt.Errorf("revocations after: %w", err)
		}
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
	if err := s.db.QueryRowContext(ctx, "SELECT seq FROM revocation_head WHERE id = 1").Scan(&seq); err != nil {
		return 0, fmt.Errorf("last revocation: %w", err)
	}
	return seq, nil
}
