package cart

import (
	"bytes"
	"time"
)

// Request is a change's idempotency claim: its key (empty for none) and
// the hash of its parameters (Op.Hash).
type Request struct {
	ID   string
	Hash [32]byte
}

// Record is a remembered idempotency key: the hash of the parameters it
// was first used with and the cart that call returned.
type Record struct {
	Hash   []byte
	Result Cart
}

// ApplyFunc computes a cart's next state, as Apply does. Backends call it
// while they hold the cart (inside a transaction), so it must not do I/O.
type ApplyFunc func(Cart) (next Cart, changed bool, err error)

// Outcome is what a change does once the backend has read the cart and
// the request's record.
type Outcome struct {
	// Result is the cart the caller gets.
	Result Cart
	// WriteCart: Result replaces the stored cart.
	WriteCart bool
	// WriteRecord: the request's key is recorded with Result.
	WriteRecord bool
}

// Decide is the idempotency rule of every cart backend. rec is the record
// of req.ID, or nil if there is none (or no key). A known key replays its
// result or, with other parameters, fails with ErrRequestReused; otherwise
// the change is applied, and the key recorded with its result (also when
// the change was a no-op, so the key cannot later be reused for something
// else). Result.UpdateTime has microsecond precision, as backends store
// it, so a first answer and its replays agree.
func Decide(cur Cart, rec *Record, req Request, apply ApplyFunc) (Outcome, error) {
	if rec != nil {
		if !bytes.Equal(rec.Hash, req.Hash[:]) {
			return Outcome{}, ErrRequestReused
		}
		return Outcome{Result: rec.Result}, nil
	}
	next, changed, err := apply(cur)
	if err != nil {
		return Outcome{}, err
	}
	next.UpdateTime = truncateTime(next.UpdateTime)
	return Outcome{Result: next, WriteCart: changed, WriteRecord: req.ID != ""}, nil
}

// truncateTime returns t at microsecond precision in UTC, the zero time as
// it is.
func truncateTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}
