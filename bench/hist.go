package bench

import (
	"math/bits"
	"time"
)

// Histogram geometry: values below 2·histSub nanoseconds are exact; above,
// each power of two is split into histSub buckets, so a recorded latency is
// off by less than 1/histSub (under 1%).
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits) * histSub // covers every non-negative int64
)

// hist is a log-linear latency histogram in nanoseconds, in the manner of
// HdrHistogram: bounded memory whatever the run's length. Not safe for
// concurrent use: each caller records into its own and they are merged.
type hist struct {
	counts [histBuckets]uint32
	n      uint64
}

func bucketOf(ns int64) int {
	v := uint64(max(ns, 0))
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// bucketValue returns the midpoint of bucket i in nanoseconds.
func bucketValue(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	lo := uint64(histSub+i%histSub) << shift
	return int64(lo + uint64(1)<<shift/2)
}

func (h *hist) record(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1) of the recorded values.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := min(max(uint64(q*float64(h.n)+0.5), 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += uint64(c); seen >= rank {
			return time.Duration(bucketValue(i))
		}
	}
	return time.Duration(bucketValue(histBuckets - 1))
}
