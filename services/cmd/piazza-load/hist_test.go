package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		sample []float64
		q      float64
		want   float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.99, 7},
		{[]float64{5, 1, 4, 2, 3}, 0.5, 3},
		{[]float64{5, 1, 4, 2, 3}, 1, 5},
		{[]float64{5, 1, 4, 2, 3}, 0, 1},
		{[]float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.9, 90},
		{[]float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.99, 100},
	} {
		if got := percentile(tc.sample, tc.q); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.sample, tc.q, got, tc.want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	t.Run("every value lies in its bucket, whose width is at most 1/64 of it", func(t *testing.T) {
		for us := int64(0); us < 1<<22; us = us*17/16 + 1 {
			d := time.Duration(us) * time.Microsecond
			i := bucketOf(d)
			if up := bucketUpper(i); up < d || (i > 0 && bucketUpper(i-1) >= d) {
				t.Fatalf("%v in bucket %d (upper %v, previous upper %v)", d, i, up, bucketUpper(i-1))
			}
			if up := bucketUpper(i); us >= subBuckets && float64(up-d) > float64(d)/subBuckets {
				t.Fatalf("%v: bucket upper %v is too far", d, up)
			}
		}
	})
}

func TestHistogramQuantiles(t *testing.T) {
	t.Run("matches the sorted sample within the bucket width", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		h := newHistogram()
		var sample []float64
		for range 10_000 {
			d := time.Duration(r.ExpFloat64() * float64(5*time.Millisecond))
			h.add(d)
			sample = append(sample, float64(d))
		}
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			want := percentile(sample, q)
			got := float64(h.quantile(q))
			if got < want-float64(time.Microsecond) || got > want*(1+2.0/subBuckets)+float64(time.Microsecond) {
				t.Errorf("q%v: histogram %v, sample %v", q, time.Duration(got), time.Duration(want))
			}
		}
	})
	t.Run("merging histograms is adding the samples", func(t *testing.T) {
		a, b, both := newHistogram(), newHistogram(), newHistogram()
		for i := range 1000 {
			d := time.Duration(i) * 37 * time.Microsecond
			both.add(d)
			if i%3 == 0 {
				a.add(d)
			} else {
				b.add(d)
			}
		}
		a.merge(b)
		for _, q := range []float64{0.5, 0.99} {
			if a.quantile(q) != both.quantile(q) || a.N != both.N || a.Max != both.Max {
				t.Errorf("q%v: merged %v, whole %v", q, a.quantile(q), both.quantile(q))
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := newHistogram().quantile(0.99); got != 0 {
			t.Errorf("got %v", got)
		}
	})
}
