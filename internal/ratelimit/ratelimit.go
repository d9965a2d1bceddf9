// Package ratelimit limits the calls of each caller separately, so that one
// client cannot starve the others: a token bucket per caller, named by a key
// function (the token subject, or the client address for unauthenticated
// calls), as the Limiter of go-grpc-middleware v2's ratelimit interceptor,
// or by key directly (Exceeded and Spend) for limits on other events than
// calls, such as failed authentications. The buckets remembered are
// bounded.
//
// Do not install PerCaller with go-grpc-middleware's ratelimit
// interceptor: it rewraps the refusal in a status of its own and so drops
// the RetryInfo; use [PerCaller.UnaryServerInterceptor].
package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tokencart/tokencart/internal/rpcerr"
)

// RetryAfterHeader is the response header that tells a limited caller how
// many seconds to wait (rounded up), as HTTP's Retry-After does.
const RetryAfterHeader = "retry-after"

const shards = 32

// MinCallers is the smallest maxCallers New accepts: one bucket per shard.
const MinCallers = shards

// evictionSample is how many buckets an insert into a full shard looks at
// to evict the least recently used (sampled LRU).
const evictionSample = 8

// PerCaller is a set of token buckets, one per caller, with a bounded
// number of callers remembered.
type PerCaller struct {
	key      func(context.Context) string
	limit    rate.Limit
	burst    int
	perShard int
	seed     maphash.Seed
	now      func() time.Time
	shards   [shards]shard
}

type shard struct {
	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// New returns a limiter allowing each caller perSecond calls a second on
// average with bursts of burst, remembering at most maxCallers callers (the
// least recently seen are forgotten, which only ever lets a caller through
// sooner). key names the caller of a call (for Limit). Memory is about 200
// bytes per remembered caller.
func New(perSecond float64, burst, maxCallers int, key func(context.Context) string) (*PerCaller, error) {
	if perSecond <= 0 || math.IsInf(perSecond, 0) || burst < 1 || maxCallers < MinCallers || key == nil {
		return nil, fmt.Errorf("ratelimit: need perSecond > 0, burst >= 1, maxCallers >= %d and a key function", MinCallers)
	}
	p := &PerCaller{key: key, limit: rate.Limit(perSecond), burst: burst, perShard: maxCallers / shards, seed: maphash.MakeSeed(), now: time.Now}
	for i := range p.shards {
		p.shards[i].buckets = make(map[string]*bucket)
	}
	return p, nil
}

// Limit takes one token from the caller's bucket. When the bucket is empty
// it returns a ResourceExhausted error (reason rpcerr.ReasonRateLimited)
// whose RetryInfo says when to retry, and sets the retry-after response
// header for clients that read headers rather than status details.
func (p *PerCaller) Limit(ctx context.Context) error {
	delay := p.take(p.key(ctx), p.now())
	if delay <= 0 {
		return nil
	}
	secs := int(math.Ceil(delay.Seconds()))
	_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterHeader, strconv.Itoa(secs)))
	return rpcerr.Exhausted(rpcerr.ReasonRateLimited, "per-caller rate limit exceeded; retry later", delay)
}

// UnaryServerInterceptor refuses the calls that Limit refuses, with Limit's
// error as it is.
func (p *PerCaller) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := p.Limit(ctx); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Exceeded reports whether key's bucket is empty, and if so how long until
// it holds a token again, without taking one.
func (p *PerCaller) Exceeded(key string) (time.Duration, bool) {
	now := p.now()
	sh := &p.shards[maphash.String(p.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[key]
	if !ok {
		return 0, false
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(p.limit) * float64(time.Second)), true
}

// Spend takes one token from key's bucket if it has one.
func (p *PerCaller) Spend(key string) { p.take(key, p.now()) }

// take takes one token from key's bucket at now, or returns how long until
// there is one (and takes nothing).
func (p *PerCaller) take(key string, now time.Time) time.Duration {
	sh := &p.shards[maphash.String(p.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[key]
	if !ok {
		if len(sh.buckets) >= p.perShard {
			sh.evict()
		}
		b = &bucket{lim: rate.NewLimiter(p.limit, p.burst)}
		sh.buckets[key] = b
	}
	b.lastSeen = now
	r := b.lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay > 0 {
		// Not taken: a refused call must not use up the caller's future.
		r.CancelAt(now)
	}
	return delay
}

// evict drops the least recently seen of a few buckets. Map iteration order
// is random, which makes the sample random.
func (sh *shard) evict() {
	var oldestKey string
	var oldest time.Time
	n := 0
	for k, b := range sh.buckets {
		if n == 0 || b.lastSeen.Before(oldest) {
			oldestKey, oldest = k, b.lastSeen
		}
		if n++; n == evictionSample {
			break
		}
	}
	delete(sh.buckets, oldestKey)
}
