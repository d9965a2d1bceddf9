package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
	"github.com/tokencart/tokencart/internal/token"
)

// t0 is the tests' "now": the store never reads a clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 678000, time.UTC)

// forEachStore runs test against SQLite and PostgreSQL. open returns one
// more handle on the same database, as a second replica would have.
func forEachStore(t *testing.T, test func(t *testing.T, open func() *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, opener(t, filepath.Join(t.TempDir(), "authsvc.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, opener(t, sqldbtest.DSN(t)))
	})
}

func opener(t *testing.T, dsn string) func() *store.Store {
	return func() *store.Store {
		t.Helper()
		s, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func mustUser(t *testing.T, s *store.Store, id string) authsvc.User {
	t.Helper()
	u := authsvc.User{ID: id, Email: id + "@example.com", PasswordHash: "$argon2id$x", Roles: []string{"customer"}, CreateTime: t0}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// sessionAt returns a new session id, created ms milliseconds after t0
// (its other bits are random: each call returns another id).
func sessionAt(ms int) string {
	return token.NewSessionID(t0.Add(time.Duration(ms) * time.Millisecond))
}

// mustSession records session sid of userID, whose refresh token is
// refresh and whose access tokens expire 10 minutes after t0.
func mustSession(t *testing.T, s *store.Store, userID, sid, refresh string) {
	t.Helper()
	created, ok := token.SessionTime(sid)
	if !ok {
		t.Fatalf("%q is not a session id", sid)
	}
	err := s.CreateSession(t.Context(), authsvc.NewSession{
		ID: sid, UserID: userID, CreateTime: created,
		RefreshHash: hash(refresh), RefreshExpireTime: t0.Add(time.Hour), AccessExpireTime: t0.Add(10 * time.Minute),
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

// rotation spends the token old of generation gen of session sid for next,
// at now, with a limit of 100 rotations a minute.
func rotation(sid string, gen int64, old, next string, now time.Time) authsvc.RefreshRotation {
	return authsvc.RefreshRotation{
		SessionID: sid, Generation: gen, OldHash: hash(old), NewHash: hash(next),
		RefreshExpireTime: now.Add(time.Hour), AccessExpireTime: now.Add(10 * time.Minute), Now: now,
		Limit: 100, Window: time.Minute,
	}
}

// sessionRev is the revocation of session sid at now.
func sessionRev(sid string, now time.Time) authsvc.Revocation {
	return authsvc.Revocation{Kind: authsvc.RevokedSession, ID: sid, RevokeTime: now}
}

// policy allows max entries per account.
func policy(max int) authsvc.RevocationPolicy {
	return authsvc.RevocationPolicy{MaxEntriesPerAccount: max, AccountExpire: t0.Add(time.Hour)}
}

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		u := mustUser(t, s, "u1")

		dup := u
		dup.ID = "u2"
		if err := s.CreateUser(ctx, dup); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("CreateUser with a taken email = %v, want ErrConflict", err)
		}
		for name, get := range map[string]func() (authsvc.User, error){
			"by email": func() (authsvc.User, error) { return s.UserByEmail(ctx, u.Email) },
			"by id":    func() (authsvc.User, error) { return s.UserByID(ctx, u.ID) },
		} {
			got, err := get()
			if err != nil || got.ID != u.ID || got.Email != u.Email || got.PasswordHash != u.PasswordHash ||
				!slices.Equal(got.Roles, u.Roles) || !got.CreateTime.Equal(u.CreateTime) {
				t.Errorf("%s = %+v, %v; want %+v", name, got, err, u)
			}
		}
		if _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("UserByEmail(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.UserByID(ctx, "nobody"); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("UserByID(unknown) = %v, want ErrNotFound", err)
		}

		// SetPasswordHash is a compare-and-set.
		if err := s.SetPasswordHash(ctx, u.ID, "stale", "new1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasswordHash(ctx, u.ID, u.PasswordHash, "new2"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "new2" {
			t.Errorf("password hash = %q, want new2", got.PasswordHash)
		}

		for range 2 { // the second grant is a no-op
			if err := s.AddRole(ctx, u.Email, "admin"); err != nil {
				t.Fatalf("AddRole: %v", err)
			}
		}
		if got, _ := s.UserByID(ctx, u.ID); !slices.Equal(got.Roles, []string{"admin", "customer"}) {
			t.Errorf("roles = %v, want [admin customer]", got.Roles)
		}
		if err := s.AddRole(ctx, "nobody@example.com", "admin"); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("AddRole(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// TestConcurrentOpen opens one database from several goroutines at once,
// as replicas starting together do: each must succeed, the schema once.
func TestConcurrentOpen(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "sub", "authsvc.db") },
		"postgres": func(t *testing.T) string { return sqldbtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dsn := dsn(t)
			const replicas = 4
			stores := make([]*store.Store, replicas)
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i := range replicas {
				wg.Go(func() { stores[i], errs[i] = store.Open(context.Background(), dsn, slog.New(slog.DiscardHandler)) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
				defer stores[i].Close()
			}
			mustUser(t, stores[0], "u1")
			if _, err := stores[replicas-1].UserByID(t.Context(), "u1"); err != nil {
				t.Errorf("replica does not see the schema: %v", err)
			}
		})
	}
}
