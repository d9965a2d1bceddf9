package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
type Argon2Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// MinArgon2Params are the least the service accepts: OWASP's first
// recommended argon2id configuration (m=19 MiB, t=2, p=1).
var MinArgon2Params = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Limits on parameters read back from stored hashes, so that a corrupted or
// hostile row cannot make a login allocate gigabytes or spin for minutes.
const (
	maxArgon2Memory  = 4 << 20 // 4 GiB, in KiB
	maxArgon2Time    = 64
	argon2SaltLen    = 16
	argon2KeyLen     = 32
	minStoredKeyLen  = 16
	maxStoredKeyLen  = 128
	minStoredSaltLen = 8
	maxStoredSaltLen = 64
)

// errHasherBusy means every hashing slot stayed taken for the queue
// timeout.
var errHasherBusy = errors.New("password hasher busy")

// hasher hashes and checks passwords with argon2id, at most a fixed number
// at a time: each hash holds Memory KiB for tens of milliseconds, so an
// unbounded number of concurrent logins would exhaust memory and CPU.
// Registrations may hold only half of the slots (at least one), so a flood
// of them, however many addresses it comes from, leaves logins room.
type hasher struct {
	params Argon2Params
	// slots holds one token per hash in progress.
	slots chan struct{}
	// lowSlots holds one token per registration hash in progress or
	// waiting for a slot.
	lowSlots chan struct{}
	wait     time.Duration
}

func newHasher(p Argon2Params, concurrency int, wait time.Duration) *hasher {
	return &hasher{
		params:   p,
		slots:    make(chan struct{}, concurrency),
		lowSlots: make(chan struct{}, max(1, concurrency/2)),
		wait:     wait,
	}
}

// acquire takes a hashing slot, waiting up to h.wait for one.
func (h *hasher) acquire(ctx context.Context) (release func(), err error) {
	return take(ctx, h.slots, h.wait)
}

// take puts a token into slots, waiting up to wait for room.
func take(ctx context.Context, slots chan struct{}, wait time.Duration) (release func(), err error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-t.C:
		return nil, errHasherBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hashLow is hash for registrations: it first takes one of the slots
// registrations may hold, so that they never hold them all.
func (h *hasher) hashLow(ctx context.Context, password string) (string, error) {
	release, err := take(ctx, h.lowSlots, h.wait)
	if err != nil {
		return "", err
	}
	defer release()
	return h.hash(ctx, password)
}

// hash returns the PHC string of password's argon2id hash under a new
// random salt, holding a hashing slot.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(password, h.params), nil
}

// HashPassword returns the PHC string of password's argon2id hash with
// parameters p under a new random salt, as authsvc stores it:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash>. It is for
// tools that write accounts into a store (a test's fixtures, a migration);
// the service itself bounds how many run at once.
func HashPassword(password string, p Argon2Params) string {
	salt := make([]byte, argon2SaltLen)
	_, _ = rand.Read(salt) // never fails (Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, argon2KeyLen)
	return encodePHC(p, salt, key)
}

// verifyHeld reports whether password matches the PHC string encoded, and
// whether encoded was made with other parameters than h's, so that the
// caller can rehash it now that it knows the password. The caller holds a
// hashing slot (from acquire), so the check counts against the bound.
func (h *hasher) verifyHeld(password, encoded string) (ok, stale bool, err error) {
	p, salt, want, err := decodePHC(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, p != h.params || len(salt) != argon2SaltLen || len(want) != argon2KeyLen, nil
}

var b64 = base64.RawStdEncoding

func encodePHC(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePHC parses what encodePHC writes, strictly, within the limits above.
func decodePHC(s string) (p Argon2Params, salt, key []byte, err error) {
	fail := func(what string) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, fmt.Errorf("password hash: %s", what)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return fail("not an argon2id PHC string")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return fail("unsupported argon2 version")
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, threads) != parts[3] {
		return fail("malformed parameters")
	}
	if p.Memory < 8*threads || p.Memory > maxArgon2Memory || p.Time < 1 || p.Time > maxArgon2Time || threads < 1 || threads > 255 {
		return fail("parameters out of range")
	}
	p.Threads = uint8(threads)
	if salt, err = b64.Strict().DecodeString(parts[4]); err != nil || len(salt) < minStoredSaltLen || len(salt) > maxStoredSaltLen {
		return fail("malformed salt")
	}
	if key, err = b64.Strict().DecodeString(parts[5]); err != nil || len(key) < minStoredKeyLen || len(key) > maxStoredKeyLen {
		return fail("malformed hash")
	}
	return p, salt, key, nil
}
