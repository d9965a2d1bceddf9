package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
)

func TestRefreshRotation(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		u := mustUser(t, s, "u1")
		sid := sessionAt(0)
		mustSession(t, s, u.ID, sid, "r1")

		now := t0.Add(time.Minute)
		got, err := s.RotateRefreshToken(ctx, rotation(sid, 1, "r1", "r2", now))
		if err != nil || got.ID != u.ID {
			t.Fatalf("RotateRefreshToken = %+v, %v; want user %s", got, err, u.ID)
		}
		ss, err := s.Session(ctx, sid)
		if err != nil || ss.UserID != u.ID || ss.RefreshGeneration != 2 || !bytes.Equal(ss.RefreshHash, hash("r2")) ||
			!bytes.Equal(ss.PrevRefreshHash, hash("r1")) || !ss.PrevUsedTime.Equal(now) ||
			!ss.AccessExpireTime.Equal(now.Add(10*time.Minute)) || !ss.RefreshExpireTime.Equal(now.Add(time.Hour)) ||
			!ss.CreateTime.Equal(t0.Truncate(time.Millisecond)) || ss.Rotations.Calls != 1 {
			t.Fatalf("after a rotation: %+v, %v", ss, err)
		}

		for _, tt := range []struct {
			name string
			r    authsvc.RefreshRotation
		}{
			{"spent token", rotation(sid, 1, "r1", "x", now)},
			{"current generation, other token", rotation(sid, 2, "nope", "x", now)},
			{"current token, wrong generation", rotation(sid, 3, "r2", "x", now)},
			{"expired", rotation(sid, 2, "r2", "x", now.Add(2*time.Hour))},
			{"unknown session", rotation(sessionAt(1), 1, "r1", "x", now)},
		} {
			if _, err := s.RotateRefreshToken(ctx, tt.r); !errors.Is(err, authsvc.ErrNotFound) {
				t.Errorf("%s: RotateRefreshToken = %v, want ErrNotFound", tt.name, err)
			}
		}
		if ss, _ := s.Session(ctx, sid); ss.RefreshGeneration != 2 {
			t.Errorf("failed rotations changed the session: generation %d", ss.RefreshGeneration)
		}
		if _, err := s.Session(ctx, sessionAt(1)); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("Session(unknown) = %v, want ErrNotFound", err)
		}

		revoked, err := s.RevokeSession(ctx, sessionRev(sid, now), policy(16))
		if err != nil || !revoked {
			t.Fatalf("RevokeSession = %v, %v", revoked, err)
		}
		if revoked, err := s.RevokeSession(ctx, sessionRev(sid, now), policy(16)); revoked || err != nil {
			t.Errorf("second RevokeSession = %v, %v; want false", revoked, err)
		}
		if revoked, err := s.RevokeSession(ctx, sessionRev(sessionAt(1), now), policy(16)); revoked || err != nil {
			t.Errorf("RevokeSession(unknown) = %v, %v; want false", revoked, err)
		}
		// A session the store no longer holds (its account deleted) is
		// revoked when the caller says whose it was.
		gone := sessionRev(sessionAt(2), now)
		gone.Subject, gone.ExpireTime = "deleted-user", now.Add(time.Hour)
		for i, want := range []bool{true, false} {
			if revoked, err := s.RevokeSession(ctx, gone, policy(16)); revoked != want || err != nil {
				t.Errorf("RevokeSession of a gone session, call %d = %v, %v; want %v", i+1, revoked, err, want)
			}
		}
		if r := findEntry(t, s, authsvc.RevokedSession, gone.ID); r.Subject != "deleted-user" || !r.ExpireTime.Equal(gone.ExpireTime) {
			t.Errorf("entry of a gone session = %+v", r)
		}
		if _, err := s.RotateRefreshToken(ctx, rotation(sid, 2, "r2", "r3", now)); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("rotation of a revoked session = %v, want ErrNotFound", err)
		}
		if _, err := s.Session(ctx, sid); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("Session of a revoked session = %v, want ErrNotFound: it is deleted", err)
		}
	})
}

// TestRotationLimit: a session is rotated at most Limit times per window;
// the window closes a Window after its first rotation.
func TestRotationLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		mustUser(t, s, "u1")
		sid := sessionAt(0)
		mustSession(t, s, "u1", sid, "r1")
		rotate := func(gen int64, at time.Duration) error {
			r := rotation(sid, gen, fmt.Sprint("r", gen), fmt.Sprint("r", gen+1), t0.Add(at))
			r.Limit = 3
			_, err := s.RotateRefreshToken(ctx, r)
			return err
		}
		for gen := int64(1); gen <= 3; gen++ {
			if err := rotate(gen, time.Duration(gen)*time.Second); err != nil {
				t.Fatalf("rotation %d of 3: %v", gen, err)
			}
		}
		if err := rotate(4, 4*time.Second); !errors.Is(err, authsvc.ErrNotFound) {
			t.Fatalf("rotation 4 of 3 = %v, want ErrNotFound", err)
		}
		ss, _ := s.Session(ctx, sid)
		if ss.RefreshGeneration != 4 || ss.Rotations.Calls != 3 || !ss.Rotations.WindowEnd.Equal(t0.Add(time.Second+time.Minute)) {
			t.Fatalf("at the limit: generation %d, rotations %+v", ss.RefreshGeneration, ss.Rotations)
		}
		if err := rotate(4, time.Second+time.Minute); err != nil {
			t.Fatalf("first rotation of the next window: %v", err)
		}
		if ss, _ := s.Session(ctx, sid); ss.Rotations.Calls != 1 {
			t.Errorf("next window counts %d", ss.Rotations.Calls)
		}
	})
}

// TestConcurrentRefreshOneWinner spends one refresh token from many
// goroutines over two handles (two replicas): exactly one may win.
func TestConcurrentRefreshOneWinner(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		stores := []*store.Store{open(), open()}
		mustUser(t, stores[0], "u1")
		for round := range 5 {
			sid := sessionAt(round)
			mustSession(t, stores[0], "u1", sid, "r1")
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					_, errs[i] = stores[i%2].RotateRefreshToken(t.Context(), rotation(sid, 1, "r1", fmt.Sprint("next-", i), t0.Add(time.Second)))
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

// TestRotateVersusRevokeSession races a rotation against the revocation of
// its session: either the rotation fails, or the session's revocation entry
// lasts until the access token the rotation issued expires.
func TestRotateVersusRevokeSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		a, b := open(), open()
		mustUser(t, a, "u1")
		for round := range 10 {
			sid := sessionAt(round)
			mustSession(t, a, "u1", sid, "r1")
			r := rotation(sid, 1, "r1", "r2", t0)
			r.AccessExpireTime = t0.Add(20 * time.Minute) // later than the session's first token
			var rotErr, revErr error
			var wg sync.WaitGroup
			wg.Go(func() { _, rotErr = a.RotateRefreshToken(t.Context(), r) })
			wg.Go(func() { _, revErr = b.RevokeSession(t.Context(), sessionRev(sid, t0), policy(100)) })
			wg.Wait()
			if revErr != nil {
				t.Fatal(revErr)
			}
			if rotErr != nil && !errors.Is(rotErr, authsvc.ErrNotFound) {
				t.Fatalf("rotation: %v", rotErr)
			}
			entry := findEntry(t, a, authsvc.RevokedSession, sid)
			if rotErr == nil && entry.ExpireTime.Before(r.AccessExpireTime) {
				t.Fatalf("round %d: the rotation won, but the session's entry expires at %v, before its token (%v)",
					round, entry.ExpireTime, r.AccessExpireTime)
			}
		}
	})
}

// TestLimitSessions revokes an account's oldest sessions to leave room for
// one more, each with its entry; other accounts are untouched.
func TestLimitSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		mustUser(t, s, "u1")
		mustUser(t, s, "u2")
		var sids []string
		for i := range 5 {
			sids = append(sids, sessionAt(i))
			mustSession(t, s, "u1", sids[i], fmt.Sprint("r", i))
		}
		other := sessionAt(100)
		mustSession(t, s, "u2", other, "other")
		u, revoked, err := s.LimitSessions(ctx, "u1", 3, t0, policy(16))
		if err != nil || u.ID != "u1" || revoked != 3 {
			t.Fatalf("LimitSessions = %+v, %d, %v; want u1 and 3 revoked", u, revoked, err)
		}
		for i, sid := range sids {
			_, err := s.Session(ctx, sid)
			if live := err == nil; live != (i >= 3) {
				t.Errorf("session %d live=%v after the limit (want the two newest live): %v", i, live, err)
			}
		}
		if got := len(entries(t, s)); got != 3 {
			t.Errorf("%d revocation entries, want 3", got)
		}
		if _, err := s.Session(ctx, other); err != nil {
			t.Errorf("another account's session: %v", err)
		}
		if _, revoked, err := s.LimitSessions(ctx, "u1", 3, t0, policy(16)); revoked != 0 || err != nil {
			t.Errorf("LimitSessions with room = %d, %v; want 0", revoked, err)
		}
	})
}
