package grpcauth

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestRevocationSetMemory measures what the revocation set holds per
// account with one revoked session, the common entry, for the bound the
// README documents (DefaultRevocationCapacity counts the account and the
// session as two entries).
func TestRevocationSetMemory(t *testing.T) {
	const n = 200_000
	sids := make([]string, n)
	for i := range sids {
		sids[i] = fmt.Sprintf("session-%016d", i)
	}
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("user-%016d", i)
	}
	until := time.Now().Add(time.Hour).UnixNano()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	set := newRevocationSet(2 * n)
	for i := range n {
		if !set.add(revEntryInput{account: accounts[i], kind: hashSession, id: sids[i], session: 1, until: until}) {
			t.Fatal("no room")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perAccount := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(set)
	runtime.KeepAlive(sids) // measured in before, so alive in after too
	runtime.KeepAlive(accounts)
	t.Logf("%.0f bytes per account with one revoked session (%d accounts, %d entries)", perAccount, n, set.len())
	if perAccount > 200 {
		t.Errorf("%.0f bytes per account with one revoked session; the documented bound assumes at most 200", perAccount)
	}
}
