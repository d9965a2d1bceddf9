package grpcauth

import "time"

// Status is a Validator's state, as its metrics report it.
type Status struct {
	// Local is true in local mode; the other fields are zero in remote mode.
	Local bool
	// KeySetLoaded: a key set has been fetched (the replica is ready).
	KeySetLoaded bool
	// KeyFetches and KeyFetchFailures count the key-set fetches attempted
	// and failed.
	KeyFetches, KeyFetchFailures int64
	// FeedLastMessage is when the revocation feed last delivered anything
	// (a revocation or a heartbeat); zero before the first message.
	FeedLastMessage time.Time
	// FeedComplete: the revocation set holds the whole state (false before
	// its first replay, or after it overflowed).
	FeedComplete bool
	// Stale: tokens are checked by the stale policy now, not the feed.
	Stale bool
	// Revocations is the number of revocation entries held.
	Revocations int
}

// Status returns v's state now.
func (v *Validator) Status() Status {
	if v.local == nil {
		return Status{}
	}
	fetches, failures := v.keys.Fetches()
	return Status{
		Local:            true,
		KeySetLoaded:     v.keys.KeySet() != nil,
		KeyFetches:       fetches,
		KeyFetchFailures: failures,
		FeedLastMessage:  v.revs.LastMessage(),
		FeedComplete:     v.revs.Complete(),
		Stale:            v.local.Stale(v.local.now()),
		Revocations:      v.revs.Len(),
	}
}
