package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// maxSessionIDLen bounds the sid claim a token may carry.
const maxSessionIDLen = 64

// sessionIDBytes is the size of a session id: 48 bits of creation time in
// milliseconds and 80 random bits.
const sessionIDBytes = 16

// NewSessionID returns a session id created at t: 128 bits, base64url, whose
// first 48 bits are t in Unix milliseconds and the other 80 random. The
// creation time is what lets one revocation entry cover every session of an
// account created before some instant (SessionTime), with no entry per
// session.
func NewSessionID(t time.Time) string {
	var b [sessionIDBytes]byte
	ms := uint64(max(t.UnixMilli(), 0))
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b[6:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SessionTime returns the creation time that NewSessionID put into sid, to
// the millisecond, and false when sid is not such an id.
func SessionTime(sid string) (time.Time, bool) {
	if base64.RawURLEncoding.DecodedLen(len(sid)) != sessionIDBytes || !canonicalBase64URL(sid) {
		return time.Time{}, false
	}
	var b [sessionIDBytes]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(sid)); err != nil || n != sessionIDBytes {
		return time.Time{}, false
	}
	ms := uint64(binary.BigEndian.Uint16(b[0:2]))<<32 | uint64(binary.BigEndian.Uint32(b[2:6]))
	return time.UnixMilli(int64(ms)).UTC(), true
}

// CoveredBefore is the time an account-wide revocation ("every session
// created before T") must be after to cover a token with claims c: the
// creation time of its session when its sid carries one (NewSessionID),
// else one microsecond before its iat, so that a revocation at T covers
// every such token issued in T's second or earlier.
func (c Claims) CoveredBefore() time.Time {
	if t, ok := SessionTime(c.SessionID); ok {
		return t
	}
	return c.IssuedAt.Add(-time.Microsecond)
}
