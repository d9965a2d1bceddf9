package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tokencart/tokencart/authsvc"
)

const userColumns = "id, email, password_hash, roles, create_time, sessions_revoked_before"

func scanUser(row interface{ Scan(...any) error }) (authsvc.User, error) {
	var u authsvc.User
	var roles string
	var created, revokedBefore int64
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &roles, &created, &revokedBefore); err != nil {
		return authsvc.User{}, notFound(err)
	}
	u.Roles = strings.Fields(roles)
	u.CreateTime = fromUS(created)
	u.SessionsRevokedBefore = fromUSOrZero(revokedBefore)
	return u, nil
}

func joinRoles(roles []string) string {
	r := slices.Clone(roles)
	slices.Sort(r)
	return strings.Join(slices.Compact(r), " ")
}

// CreateUser implements authsvc.UserStore.
func (s *Store) CreateUser(ctx context.Context, u authsvc.User) error {
	res, err := s.exec(ctx,
		"INSERT INTO users ("+userColumns+") VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT DO NOTHING",
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
	_, err := s.exec(ctx, "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2", userID, oldHash, newHash)
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
		res, err := s.exec(ctx, "UPDATE users SET roles = $3 WHERE id = $1 AND roles = $2",
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
