package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokencart/tokencart/authsvc"
)

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
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE throttle_key = $1", key); err != nil {
		return fmt.Errorf("reset login failures: %w", err)
	}
	return nil
}

// RememberLoginAddress implements authsvc.ThrottleStore.
func (s *Store) RememberLoginAddress(ctx context.Context, account, address string, now time.Time) error {
	_, err := s.exec(ctx,
		`INSERT INTO login_addresses (email, address, last_login_time) VALUES ($1, $2, $3)
		 ON CONFLICT (email, address) DO UPDATE SET last_login_time = $3`, account, address, us(now))
	if err != nil {
		return fmt.Errorf("remember login address: %w", err)
	}
	return nil
}

// KnownLoginAddress implements authsvc.ThrottleStore.
func (s *Store) KnownLoginAddress(ctx context.Context, account, address string, since time.Time) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx,
		"SELECT 1 FROM login_addresses WHERE email = $1 AND address = $2 AND last_login_time >= $3",
		account, address, us(since)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("known login address: %w", err)
	}
	return true, nil
}

// CountCall implements authsvc.ThrottleStore: one upsert, which opens a new
// window when the key's last one has closed.
func (s *Store) CountCall(ctx context.Context, key string, now time.Time, window time.Duration) (authsvc.CallCount, error) {
	var calls, end int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx,
			`INSERT INTO call_counts (count_key, window_end, calls) VALUES ($1, $3, 1)
		 ON CONFLICT (count_key) DO UPDATE SET
		   calls = CASE WHEN call_counts.window_end <= $2 THEN 1 ELSE call_counts.calls + 1 END,
		   window_end = CASE WHEN call_counts.window_end <= $2 THEN $3 ELSE call_counts.window_end END
		 RETURNING calls, window_end`, key, us(now), us(now.Add(window))).Scan(&calls, &end)
	})
	if err != nil {
		return authsvc.CallCount{}, fmt.Errorf("count call: %w", err)
	}
	return authsvc.CallCount{Calls: int(calls), WindowEnd: fromUS(end)}, nil
}
