package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// state keeps what the CLI remembers between runs, readable by its owner
// only: the access and refresh tokens, and the sealed cart of the
// request-carried cart mode (which the servers do not keep).
type state struct{ dir string }

func (s state) path(name string) string { return filepath.Join(s.dir, name) }

func (s state) write(name string, b []byte) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.WriteFile(s.path(name), b, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// saveLogin keeps the tokens of a new login.
func (s state) saveLogin(access, refresh string) error {
	if err := s.saveTokens(access, refresh); err != nil {
		return err
	}
	// A new login starts a new request-carried cart; the old blob was
	// bound to whoever was logged in before.
	return s.saveCartState(nil)
}

// saveTokens keeps the access token and, when not empty, the refresh
// token (a refresh rotates both).
func (s state) saveTokens(access, refresh string) error {
	if refresh != "" {
		if err := s.write("refresh-token", []byte(refresh)); err != nil {
			return err
		}
	}
	return s.write("token", []byte(access))
}

// refreshToken returns the saved refresh token, or "" when there is none.
func (s state) refreshToken() (string, error) {
	b, err := os.ReadFile(s.path("refresh-token"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s state) token() (string, error) {
	b, err := os.ReadFile(s.path("token"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("not logged in: run tokencartctl login EMAIL")
	}
	if err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s state) saveCartState(b []byte) error {
	if len(b) == 0 {
		err := os.Remove(s.path("cart-state"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
		return nil
	}
	return s.write("cart-state", b)
}

func (s state) cartState() ([]byte, error) {
	b, err := os.ReadFile(s.path("cart-state"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return b, nil
}

func (s state) forget() error {
	for _, name := range []string{"token", "refresh-token", "cart-state"} {
		if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
	}
	return nil
}
