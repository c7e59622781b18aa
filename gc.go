package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// gcDefaultPercent is the hub's garbage-collector target when GOGC is not
// set, instead of Go's 100. A hub's heap is mostly long-lived sockets and
// tickets, and each collection cycle delays deliveries while it runs beside
// the requests; at 300 there are a third as many cycles. Measured on two
// shared cores (docs/BENCHMARKS.md): confirm→desktop p99 at 2 000
// confirmations/s lower in 7 of 8 alternating pairs, by ~40 % on slow
// stretches, for 5.7-6.8 KiB of RSS per waiting desktop instead of 3.8-4.2.
const gcDefaultPercent = 300

// gcLimitShare is the part of a container's memory limit given to Go as a
// soft limit when GOMEMLIMIT is not set: with a higher GC target the heap
// may grow to four times what is live, and near the limit the collector
// then runs sooner instead of letting the container be killed.
const gcLimitShare = 0.9

// gcHeapFloor is the least heap goal the hub keeps while GOGC is not set
// (heapFloor). A hub with few sockets has a small live heap, so at GOGC 300
// its goal is a few tens of MiB, and a busy one collected several times a
// second: at 1 000 logins/s across two nodes (1 000 sockets each), 16-21
// cycles in 5 s, each one's marking taking a share of the cores the logins
// need; with this floor, 4 (docs/BENCHMARKS.md). A node with 15 000
// sockets has a goal above it anyway (its RSS per socket did not change);
// 128 MiB raised that by 4 KiB per socket. A container's memory limit still
// bounds the heap (gcLimitShare).
const gcHeapFloor = 64 << 20

// gcMinHeap is the Go runtime's smallest heap base (its goal is at least
// this times 1+GOGC/100): a live heap under it counts as this much.
const gcMinHeap = 4 << 20

// gcSettings is what applyGCDefaults chose, for the start-up log.
type gcSettings struct {
	percent     int   // -1: left to GOGC
	memoryLimit int64 // 0: left to GOMEMLIMIT, or no container limit
	heapFloor   int64 // 0: none (GOGC set)
}

func (g gcSettings) percentString() string {
	if g.percent < 0 {
		return "GOGC"
	}
	return strconv.Itoa(g.percent)
}

func (g gcSettings) heapFloorString() string {
	if g.heapFloor == 0 {
		return "none"
	}
	return strconv.FormatInt(g.heapFloor>>20, 10) + " MiB"
}

func (g gcSettings) memoryLimitString() string {
	if g.memoryLimit == 0 {
		return "GOMEMLIMIT or none"
	}
	return strconv.FormatInt(g.memoryLimit>>20, 10) + " MiB"
}

// applyGCDefaults sets loginhub's defaults for Go's garbage collector where
// the operator did not set Go's own variables (GOGC, GOMEMLIMIT), and
// returns them with a func that restores the previous values (tests run
// the hub in process). containerLimit is the memory limit of the hub's
// container in bytes, 0 if none.
func applyGCDefaults(getenv func(string) string, containerLimit int64) (gcSettings, func()) {
	set := gcSettings{percent: -1}
	var undo []func()
	if getenv("GOGC") == "" {
		prev := debug.SetGCPercent(gcDefaultPercent)
		undo = append(undo, func() { debug.SetGCPercent(prev) })
		set.percent = gcDefaultPercent
		set.heapFloor = gcHeapFloor
	}
	if getenv("GOMEMLIMIT") == "" && containerLimit > 0 {
		set.memoryLimit = int64(float64(containerLimit) * gcLimitShare)
		prev := debug.SetMemoryLimit(set.memoryLimit)
		undo = append(undo, func() { debug.SetMemoryLimit(prev) })
	}
	return set, func() {
		for _, f := range undo {
			f()
		}
	}
}

// heapFloor keeps the garbage collector's heap goal at floor or above, by
// raising the GC percent above base while the live heap is small: Go has
// a GC percent but no least heap goal. Its run loop is owned by run.
type heapFloor struct {
	floor    uint64
	base     int               // the percent once the live heap is large enough
	readLive func() uint64     // the live heap at the last GC, 0 before the first
	set      func(percent int) // debug.SetGCPercent
	percent  int               // what set was last given
}

func newHeapFloor(floor int64, base int) *heapFloor {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	return &heapFloor{
		floor: uint64(floor), base: base, percent: base,
		readLive: func() uint64 {
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return 0
			}
			return sample[0].Value.Uint64()
		},
		set: func(p int) { debug.SetGCPercent(p) },
	}
}

// percentFor is the GC percent that makes the goal of a live heap of live
// bytes at least the floor: the goal is max(live, gcMinHeap) *
// (1+percent/100).
func (f *heapFloor) percentFor(live uint64) int {
	live = max(live, gcMinHeap)
	if live >= f.floor {
		return f.base
	}
	return max(f.base, int(f.floor*100/live)-100)
}

// adjust sets the percent for the current live heap. SetGCPercent stops
// the world, so a change of less than an eighth is left alone.
func (f *heapFloor) adjust() {
	want := f.percentFor(f.readLive())
	if d := want - f.percent; d*8 > f.percent || -d*8 > f.percent {
		f.set(want)
		f.percent = want
	}
}

// run adjusts the percent every interval until ctx ends.
func (f *heapFloor) run(ctx context.Context, interval time.Duration) {
	f.adjust()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.adjust()
		}
	}
}

// cgroupMemoryLimit is the memory limit of this process's cgroup (v2) in
// bytes, 0 when there is none or it cannot be read (other systems).
func cgroupMemoryLimit() int64 {
	return parseMemoryMax(os.ReadFile("/sys/fs/cgroup/memory.max"))
}

// parseMemoryMax reads a cgroup v2 memory.max file: a byte count, or "max"
// for no limit.
func parseMemoryMax(b []byte, err error) int64 {
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0 // "max", or garbled
	}
	return n
}
