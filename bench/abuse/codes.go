package abuse

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxCode is the highest canonical gRPC code (Unauthenticated).
const maxCode = codes.Unauthenticated

// codeCounts counts call outcomes by gRPC code; safe for concurrent use.
type codeCounts [maxCode + 1]atomic.Int64

// add counts err's code (OK for nil). Codes outside the canonical set
// count as Unknown.
func (c *codeCounts) add(err error) codes.Code {
	code := status.Code(err)
	if code > maxCode {
		code = codes.Unknown
	}
	c[code].Add(1)
	return code
}

func (c *codeCounts) get(code codes.Code) int64 { return c[code].Load() }

// total returns the calls counted.
func (c *codeCounts) total() int64 {
	var n int64
	for code := range c {
		n += c[code].Load()
	}
	return n
}

// String lists the non-zero counts, e.g. "OK 12, ResourceExhausted 3".
func (c *codeCounts) String() string { return c.snapshot().String() }

// except lists the non-zero counts of the codes not in skip.
func (c *codeCounts) except(skip ...codes.Code) string { return c.snapshot().except(skip...) }

// counts is a codeCounts read at one moment, plain enough to travel as
// JSON from the attacker's process.
type counts [maxCode + 1]int64

// snapshot reads c.
func (c *codeCounts) snapshot() counts {
	var out counts
	for code := range c {
		out[code] = c[code].Load()
	}
	return out
}

func (c counts) get(code codes.Code) int64 { return c[code] }

// total returns the calls counted.
func (c counts) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the non-zero counts, e.g. "OK 12, ResourceExhausted 3".
func (c counts) String() string { return c.except() }

// except lists the non-zero counts of the codes not in skip.
func (c counts) except(skip ...codes.Code) string {
	var parts []string
	for code, n := range c {
		if n > 0 && !slices.Contains(skip, codes.Code(code)) {
			parts = append(parts, fmt.Sprintf("%s %d", codes.Code(code), n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
