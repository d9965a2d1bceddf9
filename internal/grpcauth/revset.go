package grpcauth

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/tokencart/tokencart/internal/token"
)

// Revocation-set bounds.
const (
	// DefaultRevocationCapacity bounds the entries a replica holds: accounts
	// with revocations plus their session and token entries. An account
	// with one revoked session (two entries) takes at most 200 bytes
	// (TestRevocationSetMemory checks it), so the set stays under 48 MiB
	// when full. Past it the set is incomplete and tokens are checked as
	// when the feed is stale (StalePolicy), never accepted unchecked.
	DefaultRevocationCapacity = 500_000
	// MaxEntriesPerAccount is the most session and token entries the set
	// keeps for one account. authsvc keeps far fewer (its
	// --revocations-per-account, 16 by default) before it revokes the
	// whole account instead; this is the replica's own bound, should an
	// issuer not. Beyond it the account's entries collapse into a cutoff
	// that covers each of them, which may also refuse live sessions of that
	// account on this replica: never a revoked one.
	MaxEntriesPerAccount = 64
	revShards            = 64
)

// revocationSet is a replica's copy of authsvc's revocation state, kept per
// account: a token can only be revoked if its account has an entry, so the
// common lookup is one map probe. Accounts, sessions and token ids are kept
// as 64-bit keyed hashes (a collision can only refuse a token, never accept
// one). Lookups take one shard's read lock.
type revocationSet struct {
	seed     maphash.Seed
	capacity int64
	shards   [revShards]revShard
	n        atomic.Int64 // accounts plus their entries
	// incomplete is set when an entry could not be kept (capacity): the set
	// no longer answers for every token until a full resync.
	incomplete atomic.Bool
	warnedFull atomic.Bool // the feed logged that the set is full
}

type revShard struct {
	mu       sync.RWMutex // guards accounts
	accounts map[uint64]accountRevs
}

// accountRevs is what the set holds for one account.
type accountRevs struct {
	// before revokes every session created before it (unix microseconds),
	// and every token without a session time issued at or before it; 0
	// when the account has no such entry. It holds until beforeUntil
	// (unix nanoseconds), when every token it can cover has expired.
	before      int64
	beforeUntil int64
	// entries are its session and token entries.
	entries []revEntry
}

// revEntry is a revoked session or token.
type revEntry struct {
	id          uint64 // hash of kind and id
	sessionTime int64  // creation time of the session, unix microseconds; 0 unknown
	until       int64  // unix nanoseconds
}

func newRevocationSet(capacity int) *revocationSet {
	s := &revocationSet{seed: maphash.MakeSeed(), capacity: int64(capacity)}
	for i := range s.shards {
		s.shards[i].accounts = make(map[uint64]accountRevs)
	}
	return s
}

// Hash domains, so that equal strings of different kinds differ.
const (
	hashAccount byte = 'a'
	hashSession byte = 's'
	hashToken   byte = 't'
)

func (s *revocationSet) hash(kind byte, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	_ = h.WriteByte(kind)
	_, _ = h.WriteString(id)
	return h.Sum64()
}

func (s *revocationSet) shard(account uint64) *revShard {
	return &s.shards[account%revShards]
}

// revoked reports whether an entry revokes the token with claims c.
func (s *revocationSet) revoked(c token.Claims) bool {
	acct := s.hash(hashAccount, c.Subject)
	sh := s.shard(acct)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	a, ok := sh.accounts[acct]
	if !ok {
		return false
	}
	if a.before > c.CoveredBefore().UnixMicro() {
		return true
	}
	if len(a.entries) == 0 {
		return false
	}
	tok := s.hash(hashToken, c.TokenID)
	var sess uint64
	if c.SessionID != "" {
		sess = s.hash(hashSession, c.SessionID)
	}
	for _, e := range a.entries {
		if e.id == tok || (sess != 0 && e.id == sess) {
			return true
		}
	}
	return false
}

// revEntryInput is one entry of the feed, parsed.
type revEntryInput struct {
	account string
	kind    byte   // hashAccount (a cutoff), hashSession or hashToken
	id      string // the sid or jti
	session int64  // creation time of the entry's session, unix microseconds; 0 unknown
	before  int64  // the cutoff, unix microseconds
	until   int64  // unix nanoseconds
}

// add records e. It returns false, and marks the set incomplete, if there
// was no room for it.
func (s *revocationSet) add(e revEntryInput) bool {
	acct := s.hash(hashAccount, e.account)
	sh := s.shard(acct)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a, exists := sh.accounts[acct]
	held := len(a.entries)
	switch e.kind {
	case hashAccount:
		if !exists && !s.reserve(1) {
			return false
		}
		a.beforeUntil = max(a.beforeUntil, e.until)
		if e.before > a.before {
			a.before = e.before
			a.entries = dropCovered(a.entries, a.before)
		}
	default:
		if e.session > 0 && e.session < a.before {
			return true // the account's cutoff covers it already
		}
		id := s.hash(e.kind, e.id)
		for _, old := range a.entries {
			if old.id == id {
				return true
			}
		}
		need := int64(1)
		if !exists {
			need++
		}
		if !s.reserve(need) {
			return false
		}
		held++
		a.entries = append(a.entries, revEntry{id: id, sessionTime: e.session, until: e.until})
		if len(a.entries) > MaxEntriesPerAccount {
			a.before, a.beforeUntil, a.entries = collapse(a.before, a.beforeUntil, a.entries)
		}
	}
	s.n.Add(int64(len(a.entries) - held)) // entries dropped as covered
	sh.accounts[acct] = a
	return true
}

// reserve takes room for n more entries, or marks the set incomplete.
func (s *revocationSet) reserve(n int64) bool {
	if s.n.Add(n) > s.capacity {
		s.n.Add(-n)
		s.incomplete.Store(true)
		return false
	}
	return true
}

// dropCovered removes the entries whose session a cutoff at before covers.
func dropCovered(entries []revEntry, before int64) []revEntry {
	kept := entries[:0]
	for _, e := range entries {
		if e.sessionTime == 0 || e.sessionTime >= before {
			kept = append(kept, e)
		}
	}
	clear(entries[len(kept):])
	return kept
}

// collapse replaces an account's entries by a cutoff after every one of
// their sessions, which revokes each of them (and any other session of the
// account created before the newest of them). Entries without a session
// time cannot be collapsed and stay.
func collapse(before, beforeUntil int64, entries []revEntry) (int64, int64, []revEntry) {
	for _, e := range entries {
		if e.sessionTime > 0 {
			before = max(before, e.sessionTime+1)
			beforeUntil = max(beforeUntil, e.until)
		}
	}
	return before, beforeUntil, dropCovered(entries, before)
}

// prune drops what has expired at now (unix nanoseconds).
func (s *revocationSet) prune(now int64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, a := range sh.accounts {
			n := len(a.entries)
			kept := a.entries[:0]
			for _, e := range a.entries {
				if e.until >= now {
					kept = append(kept, e)
				}
			}
			clear(a.entries[len(kept):])
			a.entries = kept
			if a.beforeUntil < now {
				a.before, a.beforeUntil = 0, 0
			}
			removed := n - len(a.entries)
			if len(a.entries) == 0 && a.before == 0 {
				delete(sh.accounts, k)
				removed++
			} else {
				sh.accounts[k] = a
			}
			s.n.Add(int64(-removed))
		}
		sh.mu.Unlock()
	}
}

// len returns the number of accounts plus entries held.
func (s *revocationSet) len() int { return int(s.n.Load()) }
