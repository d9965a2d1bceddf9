package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistBuckets(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 1000, 12345, 1e6, 987654321, 1 << 40, math.MaxInt64} {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		got := bucketValue(i)
		if rel := math.Abs(float64(got-v)) / math.Max(float64(v), 1); rel > 1.0/histSub {
			t.Errorf("bucketValue(bucketOf(%d)) = %d, relative error %.4f", v, got, rel)
		}
	}
	for i := 1; i < histBuckets; i++ {
		if bucketValue(i) <= bucketValue(i-1) {
			t.Fatalf("bucket %d value %d not above bucket %d's %d", i, bucketValue(i), i-1, bucketValue(i-1))
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var h, a, b hist
	var all []time.Duration
	for i := range 100000 {
		d := time.Duration(rng.ExpFloat64() * float64(200*time.Microsecond))
		all = append(all, d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	h.merge(&a)
	h.merge(&b)
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v (±1%%)", q, got, want)
		}
	}
}
