package bench

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: exact below 128 ns,
// then 128 buckets per power of two (at most 0.8 % wide). --mode create
// makes far more requests than raw samples could hold (a run until
// --duration has no bound), so it keeps this instead; histograms of
// several workers and processes merge by adding.
type histogram struct {
	Counts []uint64 `json:"counts,omitempty"` // by bucket; trailing empty buckets left off
	N      uint64   `json:"n"`
	Sum    float64  `json:"sum_ns"`
	Max    int64    `json:"max_ns"`
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
)

// histBucket is the bucket of v nanoseconds.
func histBucket(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1 // v>>e is in [histSub, 2*histSub)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histValue is the middle of bucket i, in nanoseconds.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *histogram) add(d time.Duration) {
	v := int64(d)
	i := histBucket(v)
	if i >= len(h.Counts) {
		n := max(i+1, 2*len(h.Counts), 16*histSub)
		h.Counts = append(h.Counts, make([]uint64, n-len(h.Counts))...)
	}
	h.Counts[i]++
	h.N++
	h.Sum += float64(v)
	h.Max = max(h.Max, v)
}

func (h *histogram) merge(o histogram) {
	if len(o.Counts) > len(h.Counts) {
		h.Counts = append(h.Counts, make([]uint64, len(o.Counts)-len(h.Counts))...)
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
	h.Sum += o.Sum
	h.Max = max(h.Max, o.Max)
}

// trim drops the trailing empty buckets (before sending it as JSON).
func (h *histogram) trim() {
	n := len(h.Counts)
	for n > 0 && h.Counts[n-1] == 0 {
		n--
	}
	h.Counts = h.Counts[:n]
}

// percentile is the nearest-rank p-th percentile, as its bucket's middle
// (never above the largest sample).
func (h *histogram) percentile(p float64) int64 {
	if h.N == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.N)))
	rank = min(max(rank, 1), h.N)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			return min(histValue(i), h.Max)
		}
	}
	return h.Max
}

func (h *histogram) summary() Latency {
	if h.N == 0 {
		return Latency{}
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		N: int(h.N), P50: ms(h.percentile(50)), P90: ms(h.percentile(90)), P99: ms(h.percentile(99)),
		Max: ms(h.Max), Mean: h.Sum / float64(h.N) / 1e6,
	}
}
