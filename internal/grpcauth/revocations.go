package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
	// pruneEvery is how often expired revocations are dropped.
	pruneEvery = time.Minute
	// maxReconnectWait caps the backoff between two reconnection attempts.
	maxReconnectWait = 5 * time.Second
	// DefaultStreamLifetime is how long the feed keeps one stream before
	// opening the next from its cursor. authsvc closes every connection
	// MaxConnectionAge after it opened, MaxConnectionAgeGrace (10 s by
	// default) after telling the client with a GOAWAY, and a stream on such
	// a connection stops delivering before the close reaches the client: in
	// the chaos test authsvc's Send failed with "transport is closing" 740
	// ms before the replica read EOF, and TestRevocationFeedOutlivesConnectionAge
	// saw a revocation take 1.01 s with streams kept for an hour. A stream
	// younger than the grace period was opened after the GOAWAY, on the
	// client's new connection, so it is not the one being closed.
	DefaultStreamLifetime = 5 * time.Second
)

// errRecycle ends a stream that has reached its lifetime; the next one
// resumes from the cursor at once.
var errRecycle = errors.New("stream lifetime reached")

// RevocationsConfig configures a Revocations.
type RevocationsConfig struct {
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
	// Log receives reconnections. Required.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Revocations is the set of revoked, not yet expired access-token ids,
// fed by authsvc's WatchRevocations stream. Lookups are lock-free. It records
// when the feed last delivered a message (heartbeats included), so callers
// can tell a quiet feed from a dead one.
type Revocations struct {
	client   authv1.AuthServiceClient
	idle     time.Duration
	lifetime time.Duration
	log      *slog.Logger
	now      func() time.Time

	revoked  sync.Map     // jti -> int64: unix nanoseconds after which the entry may go
	n        atomic.Int64 // entries in revoked
	lastMsg  atomic.Int64 // unix nanoseconds of the last message; 0 before the first
	messages atomic.Int64 // messages received, for tests and metrics
	connects atomic.Int64 // streams opened

	// Only Run's goroutine uses these.
	failures  int       // consecutive failed connections
	lastPrune time.Time // when expired revocations were last dropped
	warnedHB  bool      // the heartbeat-interval warning was logged
}

// NewRevocations returns an empty set; Run fills it.
func NewRevocations(cfg RevocationsConfig) (*Revocations, error) {
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Revocations{client: cfg.Client, idle: cfg.IdleTimeout, lifetime: cfg.StreamLifetime, log: cfg.Log, now: cfg.Now}, nil
}

// Revoked reports whether the token with id jti has been revoked.
func (r *Revocations) Revoked(jti string) bool {
	_, ok := r.revoked.Load(jti)
	return ok
}

// LastMessage returns when the feed last delivered a message, the zero time
// before the first.
func (r *Revocations) LastMessage() time.Time {
	n := r.lastMsg.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Len returns the number of revocations held.
func (r *Revocations) Len() int { return int(r.n.Load()) }

// Connects returns how many times the feed has been opened.
func (r *Revocations) Connects() int64 { return r.connects.Load() }

// Run follows the feed until ctx is done. After a disconnect it resumes
// from the cursor of the last message it processed, waiting between
// attempts with exponential backoff (reset by every message received), so
// nothing published meanwhile is missed; a stream that reaches its
// lifetime is followed by the next at once. Run returns nil when ctx is
// done.
func (r *Revocations) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = maxReconnectWait
	var cursor string
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := r.follow(ctx, &cursor, b)
		for errors.Is(err, errRecycle) {
			err = r.follow(ctx, &cursor, b)
		}
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		if status.Code(err) == codes.InvalidArgument && cursor != "" {
			// authsvc no longer knows our cursor (its history was pruned
			// or reset): replay every unexpired revocation instead.
			r.log.WarnContext(ctx, "revocation cursor rejected; replaying from the start", "error", err)
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
func (r *Revocations) follow(ctx context.Context, cursor *string, b backoff.BackOff) error {
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
		for _, rev := range msg.GetRevocations() {
			r.add(rev, now)
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
		if now.Sub(r.lastPrune) >= pruneEvery {
			r.prune(now)
			r.lastPrune = now
		}
	}
}

// add records one revocation. It is kept until its token can no longer be
// accepted by any verifier: exp plus the largest clock-skew leeway.
func (r *Revocations) add(rev *authv1.Revocation, now time.Time) {
	jti := rev.GetTokenId()
	if jti == "" {
		return
	}
	until := now.Add(token.DefaultLifetime + token.MaxLeeway) // exp unknown: keep as long as any token lives
	if rev.GetExpireTime() != nil {
		until = rev.GetExpireTime().AsTime().Add(token.MaxLeeway)
	}
	if !until.After(now) {
		return
	}
	if _, loaded := r.revoked.LoadOrStore(jti, until.UnixNano()); !loaded {
		r.n.Add(1)
	}
}

func (r *Revocations) prune(now time.Time) {
	nowNano := now.UnixNano()
	r.revoked.Range(func(k, v any) bool {
		if nowNano > v.(int64) && r.revoked.CompareAndDelete(k, v) {
			r.n.Add(-1)
		}
		return true
	})
}
