package store

import (
	"context"
	"fmt"

	"github.com/tokencart/tokencart/authsvc"
)

// Prune implements authsvc.Store.
func (s *Store) Prune(ctx context.Context, p authsvc.PruneTimes) error {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// A session is kept while its refresh token or an access token of
		// it may be presented (a revoked one is deleted at once).
		{"DELETE FROM sessions WHERE expire_time < $1", []any{us(p.Now)}},
		{"DELETE FROM revocation_entries WHERE expire_time < $1", []any{us(p.RevokedBefore)}},
		{"DELETE FROM login_failures WHERE last_failure_time < $1", []any{us(p.FailuresBefore)}},
		{"DELETE FROM call_counts WHERE window_end < $1", []any{us(p.Now)}},
		{"DELETE FROM login_addresses WHERE last_login_time < $1", []any{us(p.LoginAddressesBefore)}},
	} {
		if _, err := s.exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}
