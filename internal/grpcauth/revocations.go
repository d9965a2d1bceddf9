package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// Revocation-feed defaults.
const (
	// DefaultRevocationStaleness is how long the revocation feed may stay
	// silent (no revocation and no heartbeat) before the replica stops
	// trusting its revocation set.
	DefaultRevocationStaleness = 15 * time.Second
	// defaultPruneEvery is how often expired entries are dropped.
	defaultPruneEvery = time.Minute
	// MaxReconnectWait caps the backoff between two attempts to reopen the
	// feed, so that it is back within seconds of authsvc, however long the
	// outage (the connection's own backoff must be as short: client.ConnectParams).
	MaxReconnectWait = 2 * time.Second
	// DefaultStreamLifetime is how long the feed keeps one stream before
	// opening the next from its cursor. authsvc closes every connection
	// MaxConnectionAge after it opened, MaxConnectionAgeGrace (10 s by
	// default) after telling the client with a GOAWAY, and a stream on such
	// a connection stops delivering before the close reaches the client, so
	// a stream kept that long delivers revocations late (bench/RESULTS.md
	// has the measurements). A stream younger than the grace period was
	// opened after the GOAWAY, on the client's new connection, so it is not
	// the one being closed.
	DefaultStreamLifetime = 5 * time.Second
)

// errRecycle ends a stream that has reached its lifetime; the next one
// resumes from the cursor at once. errResync ends one to replay the whole
// state into a new set, once an overflowed set has room again.
var (
	errRecycle = errors.New("stream lifetime reached")
	errResync  = errors.New("revocation set resync")
)

// revocationFeedConfig configures a revocationFeed.
type revocationFeedConfig struct {
	// Client reaches authsvc's WatchRevocations. Required.
	Client authv1.AuthServiceClient
	// IdleTimeout abandons and reopens a stream that has delivered nothing
	// for this long (a half-open connection looks alive but is not); zero
	// means DefaultRevocationStaleness.
	IdleTimeout time.Duration
	// StreamLifetime is how long one stream is kept before the next is
	// opened from the cursor; zero means DefaultStreamLifetime. Keep it
	// below authsvc's --max-connection-age-grace.
	StreamLifetime time.Duration
	// Capacity bounds the entries held; zero means
	// DefaultRevocationCapacity. Past it the set is incomplete (Complete
	// reports false) until a resync from the start fits.
	Capacity int
	// PruneEvery is how often expired entries are dropped; zero means a
	// minute.
	PruneEvery time.Duration
	// Log receives reconnections. Required.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// revocationFeed is the replica's copy of authsvc's revocation state (revoked
// sessions, accounts and single tokens), fed by its WatchRevocations stream.
// It holds what is unexpired, at most Capacity entries. It records when the
// feed last delivered a message (heartbeats included), so callers can tell
// a quiet feed from a dead one, and whether it holds the whole state
// (Complete): not before the first replay has ended, nor after an entry
// could not be kept.
type revocationFeed struct {
	client     authv1.AuthServiceClient
	idle       time.Duration
	lifetime   time.Duration
	capacity   int
	pruneEvery time.Duration
	log        *slog.Logger
	now        func() time.Time

	set         atomic.Pointer[revocationSet]
	synced      atomic.Bool  // the current set has received a whole replay
	unsupported atomic.Bool  // an entry of a kind this replica does not know arrived
	lastMsg     atomic.Int64 // unix nanoseconds of the last message; 0 before the first
	messages    atomic.Int64 // messages received, for tests and metrics
	connects    atomic.Int64 // streams opened
	resyncs     atomic.Int64 // full replays after the set overflowed

	// Only Run's goroutine uses these.
	failures  int       // consecutive failed connections
	lastPrune time.Time // when expired revocations were last dropped
	warnedHB  bool      // the heartbeat-interval warning was logged
}

// newRevocationFeed returns an empty set; Run fills it.
func newRevocationFeed(cfg revocationFeedConfig) (*revocationFeed, error) {
	if cfg.Client == nil || cfg.Log == nil {
		return nil, errors.New("revocations: Client and Log are required")
	}
	if cfg.IdleTimeout < 0 || cfg.StreamLifetime < 0 {
		return nil, errors.New("revocations: idle timeout and stream lifetime must not be negative")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultRevocationStaleness
	}
	if cfg.StreamLifetime == 0 {
		cfg.StreamLifetime = DefaultStreamLifetime
	}
	if cfg.Capacity < 0 || cfg.PruneEvery < 0 {
		return nil, errors.New("revocations: capacity and prune interval must not be negative")
	}
	if cfg.PruneEvery == 0 {
		cfg.PruneEvery = defaultPruneEvery
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultRevocationCapacity
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &revocationFeed{
		client: cfg.Client, idle: cfg.IdleTimeout, lifetime: cfg.StreamLifetime, capacity: cfg.Capacity,
		pruneEvery: cfg.PruneEvery, log: cfg.Log, now: cfg.Now,
	}
	r.set.Store(newRevocationSet(cfg.Capacity))
	return r, nil
}

// Revoked reports whether the token with claims c has been revoked: its
// session, its account (a cutoff after its session's creation) or the token
// itself. Only meaningful while Complete.
func (r *revocationFeed) Revoked(c token.Claims) bool {
	return r.set.Load().revoked(c)
}

// Complete reports whether the set holds the whole revocation state as of
// the last message: a replay has ended since it was (re)built, and no entry
// had to be dropped or was of an unknown kind.
func (r *revocationFeed) Complete() bool {
	return r.synced.Load() && !r.unsupported.Load() && !r.set.Load().incomplete.Load()
}

// LastMessage returns when the feed last delivered a message, the zero time
// before the first.
func (r *revocationFeed) LastMessage() time.Time {
	n := r.lastMsg.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Len returns the number of entries held: accounts with revocations plus
// their session and token entries.
func (r *revocationFeed) Len() int { return r.set.Load().len() }

// Resyncs returns how many times the set was rebuilt from a full replay
// after it overflowed.
func (r *revocationFeed) Resyncs() int64 { return r.resyncs.Load() }

// Connects returns how many times the feed has been opened.
func (r *revocationFeed) Connects() int64 { return r.connects.Load() }

// Run follows the feed until ctx is done. After a disconnect it resumes
// from the cursor of the last message it processed, waiting between
// attempts with exponential backoff (reset by every message received), so
// nothing published meanwhile is missed; a stream that reaches its
// lifetime is followed by the next at once. Run returns nil when ctx is
// done.
func (r *revocationFeed) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = MaxReconnectWait
	var cursor string
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := r.follow(ctx, &cursor, b)
		for errors.Is(err, errRecycle) || errors.Is(err, errResync) {
			if errors.Is(err, errResync) {
				// Start over from the whole state, into a new set: the
				// old one cannot be told which entries it missed.
				r.log.InfoContext(ctx, "revocation set has room again; replaying the whole state", "entries", r.Len())
				r.resyncs.Add(1)
				r.synced.Store(false)
				r.set.Store(newRevocationSet(r.capacity))
				cursor = ""
			}
			err = r.follow(ctx, &cursor, b)
		}
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		if status.Code(err) == codes.InvalidArgument && cursor != "" {
			// authsvc no longer knows our cursor (its history was pruned
			// or reset): replay every unexpired revocation instead.
			r.log.WarnContext(ctx, "revocation cursor rejected; replaying from the start", "error", err)
			r.synced.Store(false)
			r.set.Store(newRevocationSet(r.capacity))
			cursor = ""
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
		// The first failure of an outage is a warning, the retries are noise.
		level := slog.LevelWarn
		if r.failures > 0 {
			level = slog.LevelDebug
		}
		r.failures++
		r.log.Log(ctx, level, "revocation feed interrupted; reconnecting", "error", err, "retry_in", wait, "failures", r.failures)
	}))
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	return nil
}

// follow reads one stream until it fails. It always returns an error: a
// stream that ends is a disconnect too.
func (r *revocationFeed) follow(ctx context.Context, cursor *string, b backoff.BackOff) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errIdle := fmt.Errorf("no message for %v", r.idle)
	watchdog := time.AfterFunc(r.idle, func() { cancel(errIdle) })
	defer watchdog.Stop()
	recycle := time.AfterFunc(r.lifetime, func() { cancel(errRecycle) })
	defer recycle.Stop()

	r.connects.Add(1)
	stream, err := r.client.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{Cursor: *cursor})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return cause
		}
		return err
	}
	if r.lastPrune.IsZero() {
		r.lastPrune = r.now()
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return cause
			}
			if errors.Is(err, io.EOF) {
				return errors.New("stream ended by server")
			}
			return err
		}
		watchdog.Reset(r.idle)
		now := r.now()
		set := r.set.Load()
		for _, rev := range msg.GetRevocations() {
			r.add(ctx, set, rev, now)
		}
		if len(msg.GetRevocations()) == 0 && !r.synced.Load() {
			// The first heartbeat marks the end of the replay.
			r.synced.Store(true)
		}
		if c := msg.GetCursor(); c != "" {
			*cursor = c
		}
		r.lastMsg.Store(now.UnixNano())
		r.messages.Add(1)
		b.Reset()
		if r.failures > 0 {
			r.log.InfoContext(ctx, "revocation feed resumed", "failures", r.failures)
			r.failures = 0
		}
		if hb := msg.GetHeartbeatInterval().AsDuration(); hb >= r.idle && !r.warnedHB {
			r.warnedHB = true
			r.log.WarnContext(ctx, "authsvc heartbeat interval is not below the revocation staleness bound; the feed will look stale between heartbeats",
				"heartbeat_interval", hb, "staleness", r.idle)
		}
		if now.Sub(r.lastPrune) >= r.pruneEvery {
			set.prune(now.UnixNano())
			r.lastPrune = now
			if set.incomplete.Load() && set.len() < r.capacity-r.capacity/8 {
				return errResync
			}
		}
	}
}

// add records one entry of the feed in set. An entry is kept until every
// token it covers can no longer be accepted by any verifier: its expiry
// plus the largest clock-skew leeway.
func (r *revocationFeed) add(ctx context.Context, set *revocationSet, rev *authv1.Revocation, now time.Time) {
	until := now.Add(token.DefaultLifetime + token.MaxLeeway) // expiry unknown: as long as any token lives
	if rev.GetExpireTime() != nil {
		until = rev.GetExpireTime().AsTime().Add(token.MaxLeeway)
	}
	if !until.After(now) {
		return
	}
	e := revEntryInput{account: rev.GetSubject(), until: until.UnixNano()}
	if t, ok := token.SessionTime(rev.GetSessionId()); ok {
		e.session = t.UnixMicro()
	}
	valid := e.account != ""
	switch rev.GetKind() {
	case authv1.RevocationKind_REVOCATION_KIND_UNSPECIFIED, authv1.RevocationKind_REVOCATION_KIND_TOKEN:
		e.kind, e.id = hashToken, rev.GetTokenId()
		valid = valid && e.id != ""
	case authv1.RevocationKind_REVOCATION_KIND_SESSION:
		e.kind, e.id = hashSession, rev.GetSessionId()
		valid = valid && e.id != ""
	case authv1.RevocationKind_REVOCATION_KIND_ACCOUNT:
		e.kind = hashAccount
		if b := rev.GetSessionsBefore(); b != nil {
			e.before = b.AsTime().UnixMicro()
		}
		valid = valid && e.before > 0
	default:
		valid = false
	}
	if !valid {
		// An entry this replica cannot read may revoke anything: until an
		// upgrade, every token is checked as when the feed is stale.
		if !r.unsupported.Swap(true) {
			r.log.ErrorContext(ctx, "revocation entry of an unknown kind or malformed; treating the revocation set as incomplete until restart",
				"kind", rev.GetKind().String())
		}
		return
	}
	if !set.add(e) && !set.warnedFull.Swap(true) {
		r.log.ErrorContext(ctx, "revocation set full; tokens are checked as when the feed is stale until it has room",
			"capacity", r.capacity)
	}
}
