package store_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
	"github.com/tokencart/tokencart/internal/token"
)

// entries returns every unexpired entry at t0, by sequence.
func entries(t *testing.T, s *store.Store) []authsvc.Revocation {
	t.Helper()
	revs, err := s.RevocationsAfter(t.Context(), 0, t0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

// findEntry returns the entry of kind for id, failing the test if there is
// none.
func findEntry(t *testing.T, s *store.Store, kind authsvc.RevocationKind, id string) authsvc.Revocation {
	t.Helper()
	for _, r := range entries(t, s) {
		if r.Kind == kind && r.ID == id {
			return r
		}
	}
	t.Fatalf("no entry of kind %d for %s", kind, id)
	return authsvc.Revocation{}
}

// describe lists entries as "kind:id".
func describe(revs []authsvc.Revocation) []string {
	var out []string
	for _, r := range revs {
		out = append(out, fmt.Sprintf("%d:%s", r.Kind, r.ID))
	}
	return out
}

// ref is what a token of session sid of user u names.
func ref(u, sid, jti string) authsvc.TokenRef {
	created, _ := token.SessionTime(sid)
	return authsvc.TokenRef{TokenID: jti, SessionID: sid, Subject: u, CoveredBefore: created}
}

func TestRevocationEntries(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		if seq, err := s.LastRevocationSeq(ctx); seq != 0 || err != nil {
			t.Errorf("LastRevocationSeq on empty store = %d, %v", seq, err)
		}
		mustUser(t, s, "u1")
		s1, s2 := sessionAt(0), sessionAt(1)
		mustSession(t, s, "u1", s1, "r1")
		mustSession(t, s, "u1", s2, "r2")
		for i, exp := range []time.Duration{time.Hour, -time.Hour, 2 * time.Hour} {
			r := authsvc.Revocation{Kind: authsvc.RevokedToken, ID: fmt.Sprint("j", i), Subject: "u1", SessionID: s2,
				ExpireTime: t0.Add(exp), RevokeTime: t0}
			if err := s.RevokeToken(ctx, r, policy(16)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeToken(ctx, authsvc.Revocation{Kind: authsvc.RevokedToken, ID: "j0", Subject: "u1", ExpireTime: t0, RevokeTime: t0}, policy(16)); err != nil {
			t.Errorf("revoking a token twice: %v", err)
		}
		if err := s.RevokeToken(ctx, authsvc.Revocation{Kind: authsvc.RevokedSession, ID: "x", Subject: "u1"}, policy(16)); err == nil {
			t.Error("RevokeToken accepted a session entry")
		}
		if ok, err := s.RevokeSession(ctx, sessionRev(s1, t0), policy(16)); !ok || err != nil {
			t.Fatalf("RevokeSession = %v, %v", ok, err)
		}
		revs := entries(t, s)
		if got, want := describe(revs), []string{"1:j0", "1:j2", "2:" + s1}; !slices.Equal(got, want) {
			t.Fatalf("unexpired entries = %v, want %v", got, want)
		}
		if r := revs[2]; r.Subject != "u1" || r.SessionID != s1 || !r.ExpireTime.Equal(t0.Add(10*time.Minute)) || !r.RevokeTime.Equal(t0) ||
			r.Seq <= revs[1].Seq || revs[1].Seq <= revs[0].Seq {
			t.Errorf("session entry = %+v", r)
		}
		if r := revs[0]; r.SessionID != s2 || !r.ExpireTime.Equal(t0.Add(time.Hour)) {
			t.Errorf("token entry = %+v", r)
		}
		if got, _ := s.RevocationsAfter(ctx, revs[0].Seq, t0, 10); !slices.Equal(describe(got), describe(revs[1:])) {
			t.Errorf("after the first = %v", describe(got))
		}
		if got, _ := s.RevocationsAfter(ctx, 0, t0.Add(-2*time.Hour), 2); !slices.Equal(describe(got), []string{"1:j0", "1:j1"}) {
			t.Errorf("limit 2 = %v, want [1:j0 1:j1]", describe(got))
		}
		last, _ := s.LastRevocationSeq(ctx)
		if last != revs[2].Seq {
			t.Errorf("LastRevocationSeq = %d, want %d", last, revs[2].Seq)
		}
		for _, tt := range []struct {
			name string
			ref  authsvc.TokenRef
			want bool
		}{
			{"revoked token", ref("u1", s2, "j1"), true},
			{"token of a revoked session", ref("u1", s1, "other"), true},
			{"live token of a live session", ref("u1", s2, "other"), false},
			{"no session", authsvc.TokenRef{TokenID: "other", Subject: "u1", CoveredBefore: t0}, false},
		} {
			if got, err := s.IsRevoked(ctx, tt.ref); got != tt.want || err != nil {
				t.Errorf("%s: IsRevoked = %v, %v; want %v", tt.name, got, err, tt.want)
			}
		}

		// Pruning keeps the sequence: a cursor stays valid and new
		// entries number after it.
		later := t0.Add(10 * time.Hour)
		if err := s.Prune(ctx, authsvc.PruneTimes{Now: later, RevokedBefore: later}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LastRevocationSeq(ctx); got != last {
			t.Errorf("after prune LastRevocationSeq = %d, want %d", got, last)
		}
		if got, _ := s.RevocationsAfter(ctx, 0, time.Time{}, 10); len(got) != 0 {
			t.Errorf("after prune: %v", describe(got))
		}
		if err := s.RevokeToken(ctx, authsvc.Revocation{Kind: authsvc.RevokedToken, ID: "j9", Subject: "u1", ExpireTime: later.Add(time.Hour), RevokeTime: later}, policy(16)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LastRevocationSeq(ctx); got <= last {
			t.Errorf("sequence went from %d to %d", last, got)
		}
	})
}

// TestRevokeAccount: one entry revokes every session of the account that
// exists, and replaces the entries it covers; a session created after it
// is live.
func TestRevokeAccount(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		mustUser(t, s, "u1")
		mustUser(t, s, "u2")
		old, newest := sessionAt(0), sessionAt(5000) // newest: created 5 s "after now", a clock ahead
		mustSession(t, s, "u1", old, "r1")
		mustSession(t, s, "u1", newest, "r2")
		other := sessionAt(1)
		mustSession(t, s, "u2", other, "r3")
		if _, err := s.RevokeSession(ctx, sessionRev(old, t0), policy(16)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, authsvc.Revocation{Kind: authsvc.RevokedToken, ID: "legacy", Subject: "u1", ExpireTime: t0.Add(time.Hour), RevokeTime: t0}, policy(16)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeSession(ctx, sessionRev(other, t0), policy(16)); err != nil {
			t.Fatal(err)
		}

		r, err := s.RevokeAccount(ctx, "u1", t0, policy(16))
		if err != nil {
			t.Fatal(err)
		}
		created, _ := token.SessionTime(newest)
		if r.Kind != authsvc.RevokedAccount || r.ID != "u1" || r.Subject != "u1" || !r.SessionsBefore.After(created) ||
			r.ExpireTime.Before(t0.Add(time.Hour)) {
			t.Errorf("account entry = %+v; want a cutoff after %v", r, created)
		}
		// The session entry it covers is gone; the token without a session
		// stays; another account's entries are untouched.
		if got, want := describe(entries(t, s)), []string{"1:legacy", "2:" + other, "3:u1"}; !slices.Equal(got, want) {
			t.Errorf("entries = %v, want %v", got, want)
		}
		for _, sid := range []string{old, newest} {
			if _, err := s.Session(ctx, sid); !errors.Is(err, authsvc.ErrNotFound) {
				t.Errorf("session %s of the revoked account: %v, want ErrNotFound (deleted)", sid, err)
			}
			if ok, _ := s.IsRevoked(ctx, ref("u1", sid, "j")); !ok {
				t.Errorf("token of session %s not revoked", sid)
			}
		}
		if ok, _ := s.IsRevoked(ctx, ref("u2", other, "j")); !ok {
			t.Errorf("another account's revoked session is no longer revoked")
		}
		if u, _ := s.UserByID(ctx, "u1"); !u.SessionsRevokedBefore.Equal(r.SessionsBefore) {
			t.Errorf("user's cutoff = %v, want %v", u.SessionsRevokedBefore, r.SessionsBefore)
		}
		after := token.NewSessionID(r.SessionsBefore.Add(time.Millisecond))
		mustSession(t, s, "u1", after, "r4")
		if ok, _ := s.IsRevoked(ctx, ref("u1", after, "j")); ok {
			t.Error("a session created after the cutoff is revoked")
		}
		if ok, _ := s.IsRevoked(ctx, authsvc.TokenRef{TokenID: "j", Subject: "u1", CoveredBefore: r.SessionsBefore.Add(-time.Second)}); !ok {
			t.Error("a token without a session issued before the cutoff is not revoked")
		}

		// A second revocation moves the cutoff, never back, and renumbers
		// the entry so that followers see the change.
		r2, err := s.RevokeAccount(ctx, "u1", t0.Add(-time.Hour), policy(16))
		if err != nil {
			t.Fatal(err)
		}
		if r2.SessionsBefore.Before(r.SessionsBefore) || r2.Seq <= r.Seq {
			t.Errorf("second account revocation = %+v after %+v", r2, r)
		}
		if _, err := s.RevokeAccount(ctx, "nobody", t0, policy(16)); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("RevokeAccount(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// TestRevocationsPerAccountBounded: however many sessions one account
// revokes, it holds at most MaxEntriesPerAccount entries plus one.
func TestRevocationsPerAccountBounded(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		mustUser(t, s, "u1")
		const limit = 4
		var sids []string
		for i := range 50 {
			sid := sessionAt(i)
			sids = append(sids, sid)
			mustSession(t, s, "u1", sid, "r")
			if _, err := s.RevokeSession(ctx, sessionRev(sid, t0.Add(time.Duration(i)*time.Millisecond)), policy(limit)); err != nil {
				t.Fatal(err)
			}
			if n := len(entries(t, s)); n > limit+1 {
				t.Fatalf("after %d revocations the account holds %d entries, want at most %d", i+1, n, limit+1)
			}
		}
		for _, sid := range sids {
			if ok, _ := s.IsRevoked(ctx, ref("u1", sid, "j")); !ok {
				t.Fatalf("session %s is no longer revoked", sid)
			}
		}
	})
}

// TestRevocationFeedSkipsNothing writes entries from many goroutines over
// two handles while a reader follows "seq > cursor", as WatchRevocations
// does: the reader must see every one. On PostgreSQL this fails without the
// store's serialisation of revocation transactions (a row with a smaller seq
// committing after one with a larger seq was read).
func TestRevocationFeedSkipsNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		writers := []*store.Store{open(), open()}
		reader := open()
		const perWriter, nWriters = 40, 6
		var wg sync.WaitGroup
		for w := range nWriters {
			u := fmt.Sprint("u", w)
			mustUser(t, writers[0], u)
			wg.Go(func() {
				s := writers[w%len(writers)]
				for i := range perWriter {
					var err error
					if i%4 == 0 { // also through the session path
						sid := token.NewSessionID(t0.Add(time.Duration(w*perWriter+i) * time.Millisecond))
						err = s.CreateSession(ctx, authsvc.NewSession{ID: sid, UserID: u, RefreshHash: hash(sid),
							RefreshExpireTime: t0.Add(time.Hour), AccessExpireTime: t0.Add(time.Hour)})
						if err == nil {
							_, err = s.RevokeSession(ctx, sessionRev(sid, t0), policy(1000))
						}
					} else {
						err = s.RevokeToken(ctx, authsvc.Revocation{Kind: authsvc.RevokedToken, ID: fmt.Sprintf("w%d-%d", w, i), Subject: u,
							ExpireTime: t0.Add(time.Hour), RevokeTime: t0}, policy(1000))
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
				if seen[r.ID] {
					t.Fatalf("%s delivered twice", r.ID)
				}
				seen[r.ID] = true
				cursor = r.Seq
			}
			if finished && len(revs) == 0 {
				break
			}
		}
		if len(seen) != perWriter*nWriters {
			t.Errorf("reader saw %d entries, want %d: a late commit was skipped", len(seen), perWriter*nWriters)
		}
	})
}

func TestPruneSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		s := open()
		mustUser(t, s, "u1")
		live, revoked := sessionAt(0), sessionAt(1)
		mustSession(t, s, "u1", live, "r1")
		mustSession(t, s, "u1", revoked, "r2")
		if _, err := s.RevokeSession(ctx, sessionRev(revoked, t0), policy(16)); err != nil {
			t.Fatal(err)
		}
		// Access tokens (10 min) have expired, refresh tokens (1 h) not.
		at := t0.Add(30 * time.Minute)
		if err := s.Prune(ctx, authsvc.PruneTimes{Now: at, RevokedBefore: at}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, live); err != nil {
			t.Errorf("live session pruned: %v", err)
		}
		if _, err := s.Session(ctx, revoked); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("revoked session with expired tokens kept: %v", err)
		}
		at = t0.Add(2 * time.Hour)
		if err := s.Prune(ctx, authsvc.PruneTimes{Now: at, RevokedBefore: at}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, live); !errors.Is(err, authsvc.ErrNotFound) {
			t.Errorf("expired session kept: %v", err)
		}
	})
}
