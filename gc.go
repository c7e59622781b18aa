package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
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

// gcSettings is what applyGCDefaults chose, for the start-up log.
type gcSettings struct {
	percent     int   // -1: left to GOGC
	memoryLimit int64 // 0: left to GOMEMLIMIT, or no container limit
}

func (g gcSettings) percentString() string {
	if g.percent < 0 {
		return "GOGC"
	}
	return strconv.Itoa(g.percent)
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
