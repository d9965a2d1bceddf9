package interop_test

import (
	"sync/atomic"
	"time"
)

// clock is a settable clock for authsvc's Config.Now: the real time plus
// an offset that only grows.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
