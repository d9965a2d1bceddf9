package authsvc_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/sqldb/sqldbtest"
	"github.com/tokencart/tokencart/internal/token"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until the DB is closed,
		// which authsvctest does in a cleanup; pgx pools likewise.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

// forEachStore runs test once over a SQLite file and once over a
// PostgreSQL schema; dsn names the store, which any number of replicas
// (authsvctest.Start with Options.DSN) may share.
func forEachStore(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, filepath.Join(t.TempDir(), "authsvc.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, sqldbtest.DSN(t))
	})
}

// startPair starts two replicas sharing the store dsn, configured alike.
func startPair(t *testing.T, dsn string, configure func(*authsvc.Config)) (a, b *authsvctest.Server) {
	t.Helper()
	opts := authsvctest.Options{DSN: dsn, Configure: configure}
	return authsvctest.Start(t, opts), authsvctest.Start(t, opts)
}

// clock is a settable clock for the replicas of a test: real time plus an
// offset the test advances.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// watcher follows a WatchRevocations stream, delivering its messages on a
// channel so that the test can wait with a deadline.
type watcher struct {
	msgs chan *authv1.WatchRevocationsResponse
	err  chan error
	// seen holds the entries received by waitFor.
	seen []*authv1.Revocation
}

func watch(t *testing.T, s *authsvctest.Server, cursor string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := s.ServiceClient.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{Cursor: cursor})
	if err != nil {
		cancel()
		t.Fatalf("WatchRevocations: %v", err)
	}
	w := &watcher{
		msgs: make(chan *authv1.WatchRevocationsResponse, 1024),
		err:  make(chan error, 1),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			if err != nil {
				w.err <- err
				return
			}
			w.msgs <- m
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// next returns the next message, failing the test after timeout.
func (w *watcher) next(t *testing.T, timeout time.Duration) *authv1.WatchRevocationsResponse {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case m := <-w.msgs:
		return m
	case err := <-w.err:
		w.err <- err
		t.Fatalf("revocation stream ended: %v", err)
	case <-timer.C:
		t.Fatalf("no revocation message within %v", timeout)
	}
	return nil
}

// syncUp reads messages until the first heartbeat, which marks the end of
// the replay, and returns the revocations replayed.
func (w *watcher) syncUp(t *testing.T) []*authv1.Revocation {
	t.Helper()
	var revs []*authv1.Revocation
	for {
		m := w.next(t, 5*time.Second)
		if len(m.GetRevocations()) == 0 {
			return revs
		}
		revs = append(revs, m.GetRevocations()...)
	}
}

// entryID is what a revocation entry names: the token id of a TOKEN
// entry, the session id of a SESSION entry, the account of an ACCOUNT one.
func entryID(r *authv1.Revocation) string {
	switch r.GetKind() {
	case authv1.RevocationKind_REVOCATION_KIND_SESSION:
		return r.GetSessionId()
	case authv1.RevocationKind_REVOCATION_KIND_ACCOUNT:
		return r.GetSubject()
	}
	return r.GetTokenId()
}

// covers reports whether the entry r revokes a token with claims c.
func covers(r *authv1.Revocation, c token.Claims) bool {
	switch r.GetKind() {
	case authv1.RevocationKind_REVOCATION_KIND_SESSION:
		return c.SessionID != "" && r.GetSessionId() == c.SessionID
	case authv1.RevocationKind_REVOCATION_KIND_ACCOUNT:
		return r.GetSubject() == c.Subject && r.GetSessionsBefore().AsTime().After(c.CoveredBefore())
	}
	return r.GetTokenId() == c.TokenID
}

// waitFor reads messages until an entry revokes the token with claims c,
// and returns that entry.
func (w *watcher) waitFor(t *testing.T, c token.Claims, timeout time.Duration) *authv1.Revocation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, r := range w.seen {
			if covers(r, c) {
				return r
			}
		}
		w.seen = append(w.seen, w.next(t, time.Until(deadline)).GetRevocations()...)
	}
}
