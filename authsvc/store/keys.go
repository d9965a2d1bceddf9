package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tokencart/tokencart/authsvc"
)

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
	_, err := s.exec(ctx,
		`DELETE FROM signing_keys WHERE id IN (`+placeholders(1, len(ids))+`)
		 AND id <> (SELECT newest_key_id FROM signing_key_head WHERE id = 1)`, args...)
	if err != nil {
		return fmt.Errorf("delete signing keys: %w", err)
	}
	return nil
}

// ResealSigningKey implements authsvc.KeyStore.
func (s *Store) ResealSigningKey(ctx context.Context, id, oldEncryption string, sealed []byte, encryption string) error {
	res, err := s.exec(ctx,
		"UPDATE signing_keys SET private_key = $3, private_key_encryption = $4 WHERE id = $1 AND private_key_encryption = $2",
		id, oldEncryption, sealed, encryption)
	if err != nil {
		return fmt.Errorf("reseal signing key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("reseal signing key %s: %w", id, authsvc.ErrConflict)
	}
	return nil
}
