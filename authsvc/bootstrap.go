package authsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

// bootstrapAdmin gives the --bootstrap-admin account the admin role, at
// start only, and only to an account nobody else can have claimed:
//   - with --bootstrap-admin-password, a missing account is created with
//     that password, and an existing one is granted the role only if it has
//     that password (whoever registered the address first does not become
//     admin by it);
//   - without it, an account that exists now is granted the role: register
//     it first, then start authsvc with the flag.
//
// Registering the address later never grants anything.
func (s *Service) bootstrapAdmin(ctx context.Context) error {
	email, err := normalizeEmail(s.cfg.BootstrapAdmin) // Validate has checked that it normalises
	if err != nil {
		return err
	}
	password := s.cfg.BootstrapAdminPassword
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound) && password == "":
		s.log.WarnContext(ctx, "bootstrap admin has no account, so nobody gets the admin role: register it, then restart authsvc "+
			"(or set --bootstrap-admin-password and authsvc creates it)", "email", email)
		return nil
	case errors.Is(err, ErrNotFound):
		created, err := s.createBootstrapAdmin(ctx, email, password)
		if err != nil || created {
			return err
		}
		// Another replica created it at the same moment: check it as any
		// existing account.
		if u, err = s.store.UserByEmail(ctx, email); err != nil {
			return fmt.Errorf("bootstrap admin: %w", err)
		}
	case err != nil:
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if password != "" {
		ok, err := s.passwordMatches(ctx, password, u.PasswordHash)
		if err != nil {
			return fmt.Errorf("bootstrap admin: %w", err)
		}
		if !ok {
			s.log.ErrorContext(ctx, "bootstrap admin's account exists with another password than --bootstrap-admin-password: "+
				"the admin role is NOT granted (someone else may have registered the address)", "email", email)
			return nil
		}
	}
	if err := s.store.AddRole(ctx, email, token.RoleAdmin); err != nil {
		return fmt.Errorf("grant bootstrap admin: %w", err)
	}
	s.log.InfoContext(ctx, "bootstrap admin has the admin role", "email", email)
	return nil
}

// createBootstrapAdmin creates the admin account; created is false if an
// account with the email appeared meanwhile.
func (s *Service) createBootstrapAdmin(ctx context.Context, email, password string) (created bool, err error) {
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return false, fmt.Errorf("bootstrap admin: %w", err)
	}
	u := User{ID: token.NewID(), Email: email, PasswordHash: hash,
		Roles: []string{token.RoleAdmin, token.RoleCustomer}, CreateTime: s.now().Truncate(time.Microsecond)}
	switch err := s.store.CreateUser(ctx, u); {
	case errors.Is(err, ErrConflict):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bootstrap admin: %w", err)
	}
	s.log.InfoContext(ctx, "bootstrap admin account created", "email", email)
	return true, nil
}

// passwordMatches checks password against the PHC hash encoded, holding a
// hashing slot.
func (s *Service) passwordMatches(ctx context.Context, password, encoded string) (bool, error) {
	release, err := s.hasher.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	ok, _, err := s.hasher.verifyHeld(password, encoded)
	return ok, err
}
