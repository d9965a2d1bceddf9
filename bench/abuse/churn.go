package abuse

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
)

// The churn's shape. The attacker honours no RetryInfo: a refused worker
// switches session or tries again after refusalPause, which only keeps it
// from spinning a CPU.
const (
	churnWorkers = 8
	// replayAfter is when a spent refresh token is presented again: past
	// authsvc's default --refresh-reuse-grace (10s), after which a replay
	// revokes its session.
	replayAfter = 11 * time.Second
	// sessionRefreshes is authsvc's default --refresh-limit: a session
	// refused after this many refreshes is spent, and the worker logs in
	// again; a refusal before is the address's limit.
	sessionRefreshes = 10
	refusalPause     = time.Millisecond
)

// churn is the refresh-and-reuse attack of one account: workers hold
// sessions, refresh them as fast as allowed, and replay every spent
// refresh token once it is older than the reuse grace.
type churn struct {
	auth            authv1.AuthServiceClient // from attackerSource
	email, password string
	cycles          int64        // refreshes to accept at most
	tokens          *tokenPool   // receives every access token obtained
	accepted        atomic.Int64 // refreshes accepted: cycles begun
	refreshes       codeCounts   // RefreshToken with the current token
	replays         codeCounts   // RefreshToken with a spent token, every attempt
	replayed        atomic.Int64 // spent tokens replayed: answered, not refused by a limit
	logins          codeCounts   // Login, for a new session
	spentLeft       atomic.Int64 // spent tokens not replayed when the run ended
}

// spentToken is a refresh token spent by a refresh, and when.
type spentToken struct {
	token string
	at    time.Time
}

// run runs the workers until ctx ends.
func (c *churn) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range churnWorkers {
		wg.Go(func() { c.work(ctx) })
	}
	wg.Wait()
}

func (c *churn) work(ctx context.Context) {
	var (
		refresh string // the session's current refresh token; "" for none
		used    int    // refreshes accepted in this session
		spent   []spentToken
	)
	defer func() { c.spentLeft.Add(int64(len(spent))) }()
	for ctx.Err() == nil {
		if len(spent) > 0 && time.Since(spent[0].at) >= replayAfter {
			_, err := c.auth.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: spent[0].token})
			if ended(ctx) {
				return
			}
			switch c.replays.add(err) {
			case codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded:
				pause(ctx, refusalPause) // not presented to the session: again
			default:
				c.replayed.Add(1)
				spent = spent[1:]
			}
			continue
		}
		if c.accepted.Load() >= c.cycles {
			// Every cycle has begun: only replays are left to make.
			if len(spent) == 0 {
				return
			}
			pause(ctx, time.Until(spent[0].at.Add(replayAfter)))
			continue
		}
		if refresh == "" {
			resp, err := c.auth.Login(ctx, &authv1.LoginRequest{Email: c.email, Password: c.password})
			if ended(ctx) {
				return
			}
			if c.logins.add(err) != codes.OK {
				pause(ctx, refusalPause)
				continue
			}
			refresh, used = resp.GetRefreshToken(), 0
			c.tokens.add(resp.GetAccessToken())
			continue
		}
		resp, err := c.auth.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: refresh})
		if ended(ctx) {
			return
		}
		switch c.refreshes.add(err) {
		case codes.OK:
			c.accepted.Add(1)
			spent = append(spent, spentToken{token: refresh, at: time.Now()})
			refresh, used = resp.GetRefreshToken(), used+1
			c.tokens.add(resp.GetAccessToken())
		case codes.ResourceExhausted:
			if used >= sessionRefreshes {
				refresh = "" // the session's limit: take another
				continue
			}
			pause(ctx, refusalPause) // the address's limit: try again
		case codes.Unauthenticated, codes.InvalidArgument, codes.PermissionDenied, codes.NotFound:
			refresh = "" // revoked, by a replay or by the account's cap
		default:
			pause(ctx, refusalPause)
		}
	}
}

// ended reports whether ctx has ended or its deadline has passed: a call
// can fail with DeadlineExceeded a moment before ctx says so, and its
// result belongs to no window.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
