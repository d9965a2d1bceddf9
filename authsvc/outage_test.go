package authsvc_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
)

// TestStoreOutage cuts authsvc's connection to PostgreSQL: calls that need
// the store get Unavailable (which clients retry) instead of Internal, and
// work again once the database is back.
func TestStoreOutage(t *testing.T) {
	db, dsn := sqldbtest.Proxy(t, sqldbtest.DSN(t))
	s := authsvctest.Start(t, authsvctest.Options{DSN: dsn})
	s.Register(t, "before@example.com")

	db.Disconnect()
	ctx := t.Context()
	_, err := s.Client.Register(ctx, &authv1.RegisterRequest{Email: "during@example.com", Password: authsvctest.Password})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("Register during the outage: %v (%v), want Unavailable", got, err)
	}
	_, err = s.Client.Login(ctx, &authv1.LoginRequest{Email: "before@example.com", Password: authsvctest.Password})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("Login during the outage: %v (%v), want Unavailable", got, err)
	}

	sqldbtest.Reconnect(t, db)
	expect.Eventually(t, 30*time.Second, "Login after the outage", func() bool {
		_, err := s.Client.Login(ctx, &authv1.LoginRequest{Email: "before@example.com", Password: authsvctest.Password})
		return err == nil
	})
	s.Register(t, "after@example.com")
}

// TestSQLiteFileReplaced deletes, then replaces, the SQLite file under a
// running authsvc: readiness fails and writes get Unavailable instead of
// being acknowledged (and lost at the next start).
func TestSQLiteFileReplaced(t *testing.T) {
	for name, replace := range map[string]func(t *testing.T, path string){
		"deleted": func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
		"replaced": func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other.db")
			if err := os.WriteFile(other, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "authsvc.db")
			s := authsvctest.Start(t, authsvctest.Options{DSN: path})
			ready := func() int {
				resp, err := http.Get("http://" + s.AdminAddr + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := ready(); got != http.StatusOK {
				t.Fatalf("/readyz before = %d", got)
			}
			replace(t, path)
			_, err := s.Client.Register(t.Context(), &authv1.RegisterRequest{Email: "lost@example.com", Password: authsvctest.Password})
			if got := status.Code(err); got != codes.Unavailable {
				t.Errorf("Register after the file was %s: %v (%v), want Unavailable", name, got, err)
			}
			if got := ready(); got != http.StatusServiceUnavailable {
				t.Errorf("/readyz after the file was %s = %d, want 503", name, got)
			}
		})
	}
}
