package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/sqlstore"
	"github.com/tokencart/tokencart/internal/pgtest"
)

// t0 is the tests' "now": the store never reads a clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 678000, time.UTC)

// forEachStore runs test against SQLite and PostgreSQL. open returns one
// more handle on the same database, as a second replica would have.
func forEachStore(t *testing.T, test func(t *testing.T, open func() *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, opener(t, filepath.Join(t.TempDir(), "authsvc.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, opener(t, pgtest.DSN(t)))
	})
}

func opener(t *testing.T, dsn string) func() *sqlstore.Store {
	return func() *sqlstore.Store {
		t.Helper()
		s, err := sqlstore.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
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

func mustUser(t *testing.T, s *sqlstore.Store, id string) authsvc.User {
	t.Helper()
	u := authsvc.User{ID: id, Email: id + "@example.com", PasswordHash: "$argon2id$x", Roles: []string{"customer"}, CreateTime: t0}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func mustSession(t *testing.T, s *sqlstore.Store, userID, family, refresh, access string) {
	t.Helper()
	err := s.CreateSession(t.Context(), authsvc.NewSession{
		FamilyID: family, UserID: userID,
		Refresh:       authsvc.RefreshToken{Hash: hash(refresh), ExpireTime: t0.Add(time.Hour)},
		AccessTokenID: access, AccessExpireTime: t0.Add(10 * time.Minute), Now: t0,
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func rotation(old, successor, access string, now time.Time) authsvc.RefreshRotation {
	return authsvc.RefreshRotation{
		OldHash:       hash(old),
		New:           authsvc.RefreshToken{Hash: hash(successor), ExpireTime: now.Add(time.Hour)},
		AccessTokenID: access, AccessExpireTime: now.Add(10 * time.Minute), Now: now,
	}
}

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
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

func TestRefreshRotation(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := t.Context()
		s := open()
		u := mustUser(t, s, "u1")
		mustSession(t, s, u.ID, "fam", "r1", "a1")

		now := t0.Add(time.Minute)
		got, err := s.RotateRefreshToken(ctx, rotation("r1", "r2", "a2", now))
		if err != nil || got.ID != u.ID {
			t.Fatalf("RotateRefreshToken = %+v, %v; want user %s", got, err, u.ID)
		}
		info, err := s.RefreshToken(ctx, hash("r1"))
		if err != nil || !info.UsedTime.Equal(now) || info.FamilyID != "fam" || info.UserID != u.ID {
			t.Errorf("spent token = %+v, %v; want used at %v", info, err, now)
		}

		tests := []struct {
			name string
			r    authsvc.RefreshRotation
		}{
			{"spent", rotation("r1", "r3", "a3", now)},
			{"unknown", rotation("nope", "r4", "a4", now)},
			{"expired", rotation("r2", "r5", "a5", now.Add(2*time.Hour))},
		}
		for _, tt := range tests {
			if _, err := s.RotateRefreshToken(ctx, tt.r); !errors.Is(err, authsvc.ErrNotFound) {
				t.Errorf("%s: RotateRefreshToken = %v, want ErrNotFound", tt.name, err)
			}
		}
		// A failed rotation leaves nothing behind.
		if _, err := s.RefreshToken(ctx, hash("r3")); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("successor of a failed rotation stored: %v", err)
		}

		// Revoking the family revokes its access tokens and its live token.
		if err := s.RevokeFamily(ctx, "fam", now); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeFamily(ctx, "fam", now); err != nil {
			t.Errorf("second RevokeFamily: %v", err)
		}
		if err := s.RevokeFamily(ctx, "unknown", now); err != nil {
			t.Errorf("RevokeFamily(unknown): %v", err)
		}
		for _, jti := range []string{"a1", "a2"} {
			if ok, err := s.IsRevoked(ctx, jti); !ok || err != nil {
				t.Errorf("IsRevoked(%s) = %v, %v; want true", jti, ok, err)
			}
		}
		if _, err := s.RotateRefreshToken(ctx, rotation("r2", "r6", "a6", now)); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("rotation in a revoked family = %v, want ErrNotFound", err)
		}
		info, err = s.RefreshToken(ctx, hash("r2"))
		if err != nil || !info.FamilyRevokeTime.Equal(now) || !info.UsedTime.IsZero() {
			t.Errorf("token of revoked family = %+v, %v", info, err)
		}
	})
}

// TestConcurrentRefreshOneWinner spends one refresh token from many
// goroutines over two handles (two replicas): exactly one may win.
func TestConcurrentRefreshOneWinner(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		stores := []*sqlstore.Store{open(), open()}
		mustUser(t, stores[0], "u1")
		for round := range 5 {
			old := fmt.Sprintf("r%d", round)
			mustSession(t, stores[0], "u1", "fam"+old, old, "a"+old)
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					name := fmt.Sprintf("%s-%d", old, i)
					_, errs[i] = stores[i%2].RotateRefreshToken(t.Context(), rotation(old, name, "a"+name, t0.Add(time.Second)))
				})
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, authsvc.ErrNotFound):
					t.Errorf("loser got %v, want ErrNotFound", err)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d winners, want 1", round, wins)
			}
		}
	})
}

// TestRotateVersusRevokeFamily races a rotation against the revocation of
// its family: either the rotation fails, or its access token is revoked.
func TestRotateVersusRevokeFamily(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		a, b := open(), open()
		mustUser(t, a, "u1")
		for round := range 10 {
			old := fmt.Sprintf("r%d", round)
			fam := "fam" + old
			mustSession(t, a, "u1", fam, old, "a"+old)
			var rotErr, revErr error
			var wg sync.WaitGroup
			wg.Go(func() { _, rotErr = a.RotateRefreshToken(t.Context(), rotation(old, old+"next", "a"+old+"next", t0)) })
			wg.Go(func() { revErr = b.RevokeFamily(t.Context(), fam, t0) })
			wg.Wait()
			if revErr != nil {
				t.Fatal(revErr)
			}
			if rotErr != nil {
				if !errors.Is(rotErr, authsvc.ErrNotFound) {
					t.Fatalf("rotation: %v", rotErr)
				}
				continue
			}
			if ok, err := a.IsRevoked(t.Context(), "a"+old+"next"); !ok || err != nil {
				t.Fatalf("round %d: rotation won, but its access token is not revoked (%v)", round, err)
			}
		}
	})
}

func TestRevocations(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := t.Context()
		s := open()
		if seq, err := s.LastRevocationSeq(ctx); seq != 0 || err != nil {
			t.Errorf("LastRevocationSeq on empty store = %d, %v", seq, err)
		}
		for i, exp := range []time.Duration{time.Hour, -time.Hour, 2 * time.Hour} {
			r := authsvc.Revocation{TokenID: fmt.Sprint("j", i), Subject: "u", ExpireTime: t0.Add(exp), RevokeTime: t0}
			if err := s.Revoke(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Revoke(ctx, authsvc.Revocation{TokenID: "j0", Subject: "u", ExpireTime: t0, RevokeTime: t0}); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		revs, err := s.RevocationsAfter(ctx, 0, t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(rs []authsvc.Revocation) (out []string) {
			for _, r := range rs {
				out = append(out, r.TokenID)
			}
			return out
		}
		if got := ids(revs); !slices.Equal(got, []string{"j0", "j2"}) {
			t.Fatalf("unexpired revocations = %v, want [j0 j2]", got)
		}
		if !revs[0].ExpireTime.Equal(t0.Add(time.Hour)) || !revs[0].RevokeTime.Equal(t0) || revs[0].Subject != "u" || revs[0].Seq >= revs[1].Seq {
			t.Errorf("revocation = %+v", revs[0])
		}
		if got, _ := s.RevocationsAfter(ctx, revs[0].Seq, t0, 10); !slices.Equal(ids(got), []string{"j2"}) {
			t.Errorf("after j0 = %v, want [j2]", ids(got))
		}
		if got, _ := s.RevocationsAfter(ctx, 0, t0.Add(-2*time.Hour), 2); !slices.Equal(ids(got), []string{"j0", "j1"}) {
			t.Errorf("limit 2 = %v, want [j0 j1]", ids(got))
		}
		last, _ := s.LastRevocationSeq(ctx)
		if last != revs[1].Seq {
			t.Errorf("LastRevocationSeq = %d, want %d", last, revs[1].Seq)
		}
		if ok, _ := s.IsRevoked(ctx, "j1"); !ok {
			t.Error("j1 not revoked")
		}
		if ok, _ := s.IsRevoked(ctx, "other"); ok {
			t.Error("unknown token revoked")
		}

		// Pruning everything still keeps the newest, so the sequence never
		// goes back and a cursor stays valid.
		if err := s.Prune(ctx, t0.Add(10*time.Hour), t0.Add(10*time.Hour), t0); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LastRevocationSeq(ctx); got != last {
			t.Errorf("after prune LastRevocationSeq = %d, want %d", got, last)
		}
		if ok, _ := s.IsRevoked(ctx, "j0"); ok {
			t.Error("expired revocation not pruned")
		}
		if err := s.Revoke(ctx, authsvc.Revocation{TokenID: "j9", Subject: "u", ExpireTime: t0.Add(time.Hour), RevokeTime: t0}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LastRevocationSeq(ctx); got <= last {
			t.Errorf("sequence went from %d to %d", last, got)
		}
	})
}

// TestRevocationFeedSkipsNothing writes revocations from many goroutines
// over two handles while a reader follows "seq > cursor", as
// WatchRevocations does: the reader must see every one. On PostgreSQL this
// fails without the store's insert serialisation (a row with a smaller seq
// committing after one with a larger seq was read).
func TestRevocationFeedSkipsNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := t.Context()
		writers := []*sqlstore.Store{open(), open()}
		reader := open()
		const perWriter, nWriters = 40, 6
		var wg sync.WaitGroup
		for w := range nWriters {
			wg.Go(func() {
				s := writers[w%len(writers)]
				for i := range perWriter {
					id := fmt.Sprintf("w%d-%d", w, i)
					var err error
					if i%4 == 0 { // also through the family path
						u := fmt.Sprintf("u%d-%d", w, i)
						err = errors.Join(
							s.CreateUser(ctx, authsvc.User{ID: u, Email: u + "@example.com", PasswordHash: "h", CreateTime: t0}),
							s.CreateSession(ctx, authsvc.NewSession{
								FamilyID: "f" + id, UserID: u, AccessTokenID: id, AccessExpireTime: t0.Add(time.Hour), Now: t0,
								Refresh: authsvc.RefreshToken{Hash: hash("r" + id), ExpireTime: t0.Add(time.Hour)},
							}),
							s.RevokeFamily(ctx, "f"+id, t0))
					} else {
						err = s.Revoke(ctx, authsvc.Revocation{TokenID: id, Subject: "u", ExpireTime: t0.Add(time.Hour), RevokeTime: t0})
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		seen := map[string]bool{}
		var cursor int64
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for finished := false; ; {
			select {
			case <-done:
				finished = true
			default:
			}
			revs, err := reader.RevocationsAfter(ctx, cursor, t0, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range revs {
				if seen[r.TokenID] {
					t.Fatalf("%s delivered twice", r.TokenID)
				}
				seen[r.TokenID] = true
				cursor = r.Seq
			}
			if finished && len(revs) == 0 {
				break
			}
		}
		if len(seen) != perWriter*nWriters {
			t.Errorf("reader saw %d revocations, want %d: a late commit was skipped", len(seen), perWriter*nWriters)
		}
	})
}

func TestSigningKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := t.Context()
		a, b := open(), open()
		key := func(id string, created time.Duration) authsvc.StoredKey {
			return authsvc.StoredKey{ID: id, PublicKey: []byte("pub-" + id), PrivateKey: []byte("priv-" + id),
				Encryption: "none", CreateTime: t0.Add(created), ActivateTime: t0.Add(created + time.Minute)}
		}
		if err := a.AddSigningKey(ctx, key("k1", 0), ""); err != nil {
			t.Fatal(err)
		}
		if err := b.AddSigningKey(ctx, key("k1b", 0), ""); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("second first key = %v, want ErrConflict", err)
		}
		if err := b.AddSigningKey(ctx, key("k2", time.Hour), "stale"); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("add after a stale newest = %v, want ErrConflict", err)
		}

		// Two replicas rotating at once: one key is added.
		errs := make([]error, 6)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				s := []*sqlstore.Store{a, b}[i%2]
				errs[i] = s.AddSigningKey(ctx, key(fmt.Sprint("k2-", i), time.Hour), "k1")
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, authsvc.ErrConflict) {
				t.Errorf("AddSigningKey: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d concurrent rotations won, want 1", wins)
		}
		keys, newest, err := b.SigningKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].ID != "k1" || newest != keys[1].ID {
			t.Fatalf("SigningKeys = %+v, newest %q, %v", keys, newest, err)
		}
		k := keys[0]
		if !bytes.Equal(k.PublicKey, []byte("pub-k1")) || !bytes.Equal(k.PrivateKey, []byte("priv-k1")) || k.Encryption != "none" ||
			!k.CreateTime.Equal(t0) || !k.ActivateTime.Equal(t0.Add(time.Minute)) {
			t.Errorf("stored key = %+v", k)
		}
		// A replica whose clock is behind adds a key created "earlier": it
		// is still the newest, the one the next rotation must name.
		if err := a.AddSigningKey(ctx, key("k3", -time.Hour), newest); err != nil {
			t.Fatal(err)
		}
		if _, got, _ := b.SigningKeys(ctx); got != "k3" {
			t.Errorf("newest after a skewed rotation = %q, want k3", got)
		}
		if err := b.AddSigningKey(ctx, key("k4", 2*time.Hour), "k3"); err != nil {
			t.Errorf("rotation after a skewed one: %v", err)
		}
		newest = "k4"
		all, _, _ := a.SigningKeys(ctx)
		var ids []string
		for _, k := range all {
			ids = append(ids, k.ID)
		}
		if err := a.DeleteSigningKeys(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if keys, _, _ := a.SigningKeys(ctx); len(keys) != 1 || keys[0].ID != newest {
			t.Errorf("after delete: %+v, want only the newest key %s", keys, newest)
		}
	})
}

func TestLoginFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := t.Context()
		a, b := open(), open()
		keys := []string{"account:x", "address:1.2.3.4"}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				if err := []*sqlstore.Store{a, b}[i%2].RecordLoginFailure(ctx, keys, t0, t0.Add(-time.Minute)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := a.LoginFailures(ctx, append(keys, "account:other"), t0.Add(-time.Minute))
		if err != nil || len(got) != 2 {
			t.Fatalf("LoginFailures = %+v, %v", got, err)
		}
		for _, f := range got {
			if f.Failures != 10 || !f.Last.Equal(t0) {
				t.Errorf("%s: %d failures, last %v; want 10 at %v", f.Key, f.Failures, f.Last, t0)
			}
		}
		// A failure after the window restarts the count.
		later := t0.Add(time.Hour)
		if err := b.RecordLoginFailure(ctx, keys[:1], later, later.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ = b.LoginFailures(ctx, keys, later.Add(-time.Minute))
		if len(got) != 1 || got[0].Key != keys[0] || got[0].Failures != 1 {
			t.Errorf("after the window: %+v, want 1 failure of %s", got, keys[0])
		}
		if err := a.ResetLoginFailures(ctx, keys[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.LoginFailures(ctx, keys, t0.Add(-time.Hour)); len(got) != 1 || got[0].Key != keys[1] {
			t.Errorf("after reset: %+v", got)
		}
		if err := a.Prune(ctx, later, later, later); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.LoginFailures(ctx, keys, time.Time{}); len(got) != 0 {
			t.Errorf("after prune: %+v", got)
		}
	})
}

func TestPruneSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *sqlstore.Store) {
		ctx := t.Context()
		s := open()
		mustUser(t, s, "u1")
		mustSession(t, s, "u1", "fam", "r1", "a1")
		if err := s.Prune(ctx, t0.Add(30*time.Minute), t0, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RefreshToken(ctx, hash("r1")); err != nil {
			t.Errorf("unexpired refresh token pruned: %v", err)
		}
		if err := s.Prune(ctx, t0.Add(2*time.Hour), t0.Add(2*time.Hour), t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RefreshToken(ctx, hash("r1")); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("expired refresh token kept: %v", err)
		}
	})
}

// TestConcurrentOpen opens one database from several goroutines at once,
// as replicas starting together do: each must succeed, the schema once.
func TestConcurrentOpen(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "sub", "authsvc.db") },
		"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dsn := dsn(t)
			const replicas = 4
			stores := make([]*sqlstore.Store, replicas)
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i := range replicas {
				wg.Go(func() { stores[i], errs[i] = sqlstore.Open(context.Background(), dsn, slog.New(slog.DiscardHandler)) })
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
