package grpcauth

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

func claimsFor(i int, kid string) token.Claims {
	now := time.Now()
	return token.Claims{
		Issuer: "tokencart-authsvc", Subject: "user-" + strconv.Itoa(i), Audience: []string{"tokencart"},
		Roles: []string{token.RoleCustomer}, TokenID: token.NewID(), IssuedAt: now, NotBefore: now,
		Expiry: now.Add(time.Hour), KeyID: kid,
	}
}

func TestTokenCache(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := newTokenCache(100)
	k := keyOf("a")
	if _, ok := c.get(k, now); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(k, claimsFor(1, "k1"), now.Add(time.Minute), now)
	if got, ok := c.get(k, now); !ok || got.Subject != "user-1" {
		t.Fatalf("get = %+v, %v", got, ok)
	}
	if _, ok := c.get(keyOf("b"), now); ok {
		t.Error("hit for another token")
	}
	if _, ok := c.get(k, now.Add(time.Minute)); ok {
		t.Error("hit at the deadline")
	}
	if c.len() != 0 {
		t.Errorf("expired entry kept: len %d", c.len())
	}
	if hits, misses := c.lookups(); hits != 1 || misses != 3 {
		t.Errorf("lookups: %d hits, %d misses; want 1, 3 (empty, other token, expired)", hits, misses)
	}
	c.put(k, claimsFor(1, "k1"), now, now)
	if c.len() != 0 {
		t.Error("cached an entry already dead")
	}

	// Bounded under concurrent inserts.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				c.put(keyOf(fmt.Sprint(g, i)), claimsFor(i, "k"+strconv.Itoa(i%2)), now.Add(time.Hour), now)
			}
		})
	}
	wg.Wait()
	if n := c.len(); n > 100 || n < 50 {
		t.Errorf("len %d after 1600 inserts into a cache of 100", n)
	}

	// Withdrawing a key drops exactly its entries.
	c.dropKeyIDs([]string{"k0"})
	c.entries.Range(func(_, v any) bool {
		if v.(*cacheEntry).claims.KeyID == "k0" {
			t.Error("entry of a withdrawn key kept")
		}
		return true
	})

	disabled := newTokenCache(0)
	disabled.put(k, claimsFor(1, "k"), now.Add(time.Hour), now)
	if _, ok := disabled.get(k, now); ok {
		t.Error("disabled cache hit")
	}
}

// TestTokenCacheMemory measures the cost of a full cache, the figure behind
// DefaultTokenCacheSize's stated bound.
func TestTokenCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a full cache")
	}
	const n = DefaultTokenCacheSize
	now := time.Now()
	claims := make([]token.Claims, n)
	for i := range claims {
		claims[i] = claimsFor(i, "kid-"+token.NewID())
	}
	keys := make([]tokenKey, n)
	for i := range keys {
		keys[i] = keyOf("token-" + strconv.Itoa(i))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newTokenCache(n)
	for i := range n {
		c.put(keys[i], claims[i], now.Add(time.Hour), now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Claims strings come from token parsing; count them too.
	strBytes := 0
	for _, cl := range claims {
		strBytes += len(cl.Issuer) + len(cl.Subject) + len(cl.Audience[0]) + len(cl.Roles[0]) + len(cl.TokenID) + len(cl.KeyID) + 2*16
	}
	perEntry := (float64(after.HeapAlloc-before.HeapAlloc) + float64(strBytes)) / n
	t.Logf("token cache: %d entries, about %.0f bytes each, %.1f MiB in all", c.len(), perEntry, perEntry*n/(1<<20))
	runtime.KeepAlive(c)
	if perEntry > 1024 {
		t.Errorf("%.0f bytes per entry; DefaultTokenCacheSize's documented bound assumes at most 1024", perEntry)
	}
}

func BenchmarkTokenCacheGetParallel(b *testing.B) {
	now := time.Now()
	c := newTokenCache(1000)
	k := keyOf("a-token-of-realistic-length-" + token.NewID())
	c.put(k, claimsFor(1, "k"), now.Add(time.Hour), now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.get(k, now); !ok {
				b.Fatal("miss")
			}
		}
	})
}
