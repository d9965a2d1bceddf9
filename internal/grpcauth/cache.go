package grpcauth

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

// tokenKey is the cache key of a raw token: its SHA-256. Keying by a
// collision-resistant hash of the whole token means a cached answer can only
// ever be returned for the exact token that earned it, and the cache holds
// no credentials.
type tokenKey [sha256.Size]byte

func keyOf(raw string) tokenKey {
	return sha256.Sum256([]byte(raw))
}

// tokenCache is a bounded map from tokenKey to the claims a token was found
// to carry, each entry usable until its own deadline (never later than the
// token's exp). Reads are lock-free: sync.Map is a hash-trie whose Load takes
// no lock, so concurrent requests presenting the same token do not contend.
// Writes happen once per token per lifetime; when the cache is full a writer
// sweeps it (expired entries first, then arbitrary ones) under evictMu, which
// only writers ever take.
type tokenCache struct {
	max     int64
	entries sync.Map // tokenKey -> *cacheEntry
	n       atomic.Int64
	evictMu sync.Mutex // serialises eviction sweeps; never taken on a read

	hits, misses atomic.Int64 // lookups that found a live entry, and not
}

type cacheEntry struct {
	claims   token.Claims
	deadline int64 // unix nanoseconds at and after which the entry is dead
}

// newTokenCache returns a cache of at most max entries, or nil (a cache that
// holds nothing) when max <= 0.
func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: int64(max)}
}

// get returns the claims cached for k, if an entry is alive at now.
func (c *tokenCache) get(k tokenKey, now time.Time) (token.Claims, bool) {
	if c == nil {
		return token.Claims{}, false
	}
	v, ok := c.entries.Load(k)
	if !ok {
		c.misses.Add(1)
		return token.Claims{}, false
	}
	e := v.(*cacheEntry)
	if now.UnixNano() >= e.deadline {
		c.remove(k, e)
		c.misses.Add(1)
		return token.Claims{}, false
	}
	c.hits.Add(1)
	return e.claims, true
}

// lookups returns how many gets found a live entry and how many did not.
func (c *tokenCache) lookups() (hits, misses int64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

// put caches claims for k until deadline. A full cache that cannot be swept
// right now (another writer is sweeping) simply does not cache: the caller
// verifies again next time, which is correct, only slower.
func (c *tokenCache) put(k tokenKey, claims token.Claims, deadline, now time.Time) {
	if c == nil || !deadline.After(now) {
		return
	}
	if c.n.Load() >= c.max {
		if !c.evictMu.TryLock() {
			return
		}
		c.sweep(now)
		c.evictMu.Unlock()
		if c.n.Load() >= c.max {
			return
		}
	}
	if _, loaded := c.entries.LoadOrStore(k, &cacheEntry{claims: claims, deadline: deadline.UnixNano()}); !loaded {
		c.n.Add(1)
	}
}

// sweep removes expired entries and, if that frees less than an eighth of
// the capacity, arbitrary live ones until it has. sync.Map ranges in hash
// order, so the victims are effectively random. Callers hold evictMu.
func (c *tokenCache) sweep(now time.Time) {
	nowNano := now.UnixNano()
	c.entries.Range(func(k, v any) bool {
		if e := v.(*cacheEntry); nowNano >= e.deadline {
			c.remove(k.(tokenKey), e)
		}
		return true
	})
	target := c.max - c.max/8
	if c.n.Load() <= target {
		return
	}
	c.entries.Range(func(k, v any) bool {
		c.remove(k.(tokenKey), v.(*cacheEntry))
		return c.n.Load() > target
	})
}

// dropKeyIDs removes the entries of tokens signed by any of kids, for when
// those keys leave the key set.
func (c *tokenCache) dropKeyIDs(kids []string) {
	if c == nil || len(kids) == 0 {
		return
	}
	gone := make(map[string]bool, len(kids))
	for _, kid := range kids {
		gone[kid] = true
	}
	c.entries.Range(func(k, v any) bool {
		if e := v.(*cacheEntry); gone[e.claims.KeyID] {
			c.remove(k.(tokenKey), e)
		}
		return true
	})
}

func (c *tokenCache) remove(k tokenKey, e *cacheEntry) {
	if c.entries.CompareAndDelete(k, e) {
		c.n.Add(-1)
	}
}

// len returns the number of entries.
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	return int(c.n.Load())
}
