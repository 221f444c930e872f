package main

import (
	"math"
	"sort"
	"time"
)

// histogram is a log-linear latency histogram in the manner of HDR: values
// from 1 µs to about 18 minutes in buckets of at most 1/subBuckets relative
// width (about 1.6% with 64), so that it can be merged across processes.
type histogram struct {
	Counts map[int]int64 `json:"counts"` // bucket index → count
	N      int64         `json:"n"`
	Max    time.Duration `json:"max"`
}

const subBuckets = 64

func newHistogram() *histogram { return &histogram{Counts: map[int]int64{}} }

// bucketOf returns the bucket index of d: below subBuckets µs the bucket is
// the value in µs; above, each power of two is split into subBuckets.
func bucketOf(d time.Duration) int {
	us := d.Microseconds()
	if us < subBuckets {
		return int(max(us, 0))
	}
	exp := int(math.Floor(math.Log2(float64(us)))) // ≥ 6
	base := int64(1) << exp
	sub := int((us - base) * subBuckets / base)
	return subBuckets + (exp-6)*subBuckets + sub
}

// bucketUpper is the largest value in bucket i (the value reported for it).
func bucketUpper(i int) time.Duration {
	if i < subBuckets {
		return time.Duration(i) * time.Microsecond
	}
	exp := (i-subBuckets)/subBuckets + 6
	sub := int64((i - subBuckets) % subBuckets)
	base := int64(1) << exp
	return time.Duration(base+(sub+1)*base/subBuckets-1) * time.Microsecond
}

func (h *histogram) add(d time.Duration) {
	h.Counts[bucketOf(d)]++
	h.N++
	h.Max = max(h.Max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
	h.Max = max(h.Max, o.Max)
}

// quantile returns the value at quantile q (0..1): the upper bound of the
// bucket holding the ceil(q·N)-th smallest value, capped at the maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.N)))
	rank = min(max(rank, 1), h.N)
	idx := make([]int, 0, len(h.Counts))
	for i := range h.Counts {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var seen int64
	for _, i := range idx {
		seen += h.Counts[i]
		if seen >= rank {
			return min(bucketUpper(i), h.Max)
		}
	}
	return h.Max
}

// percentile returns the q-quantile (0..1) of a sample by the nearest-rank
// method; it sorts the sample.
func percentile(sample []float64, q float64) float64 {
	if len(sample) == 0 {
		return 0
	}
	sort.Float64s(sample)
	rank := int(math.Ceil(q * float64(len(sample))))
	rank = min(max(rank, 1), len(sample))
	return sample[rank-1]
}
