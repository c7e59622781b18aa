// Package gcpolicy is loginhub's policy for Go's garbage collector where
// the operator did not set GOGC or GOMEMLIMIT: fewer collection cycles
// while the hub is busy (each one delays the deliveries that run beside
// it), and the heap handed back to the system once the hub goes idle. GOGC
// and GOMEMLIMIT alone cannot do both: Go has no least heap goal and
// returns free memory slowly. Start is the one entry point.
package gcpolicy

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// DefaultPercent is the hub's garbage-collector target when GOGC is not
// set, instead of Go's 100. A hub's heap is mostly long-lived sockets and
// tickets, and each collection cycle delays deliveries while it runs beside
// the requests; at 300 there are a third as many cycles, for somewhat more
// memory per waiting desktop (docs/BENCHMARKS.md has the trade measured).
const DefaultPercent = 300

// LimitShare is the part of a container's memory limit given to Go as a
// soft limit when GOMEMLIMIT is not set: with a higher GC target the heap
// may grow to four times what is live, and near the limit the collector
// then runs sooner instead of letting the container be killed.
const LimitShare = 0.9

// gcHeapFloor is the least heap goal the hub keeps while GOGC is not set
// (heapPolicy), or a quarter of the memory limit if that is less. A hub's
// live heap is small (a few KiB per socket), so at GOGC 300 alone a busy
// node would still collect every few seconds, and the confirmations sent
// during a cycle are the slowest of a run. The headroom is given back
// when the hub goes idle (gcIdleRate), so it costs memory only while the
// hub is busy, and a container's memory limit still bounds it
// (LimitShare).
const gcHeapFloor = 256 << 20

// gcIdleRate is the allocation rate, in bytes per second, under which
// heapPolicy counts the hub as idle: pings and /metrics scrapes allocate
// far less, a hub doing a few hundred logins a second more. Under it the
// heap goes back to the system whenever gcIdleSlack of garbage has built
// up.
const gcIdleRate = 4 << 20

// gcIdleFor is how long the hub must stay under gcIdleRate before
// heapPolicy hands its idle heap back to the operating system.
const gcIdleFor = time.Second

// gcTick is how often heapPolicy reads the heap: often enough that an idle
// hub hands its heap back within a second or two.
const gcTick = 250 * time.Millisecond

// gcIdleSlack is the least heap worth handing back when idle: below it a
// collection and the system calls to release memory are not worth it.
const gcIdleSlack = 32 << 20

// gcMinHeap is the Go runtime's smallest heap base (its goal is at least
// this times 1+GOGC/100): a live heap under it counts as this much.
const gcMinHeap = 4 << 20

// Settings is what Start chose, for the start-up log.
type Settings struct {
	percent     int   // -1: left to GOGC
	memoryLimit int64 // 0: left to GOMEMLIMIT, or no container limit
	heapFloor   int64 // 0: none (GOGC set); see heapPolicy
}

// LogValue shows the settings as a log group: percent, heap_floor,
// memory_limit.
func (g Settings) LogValue() slog.Value {
	percent, floor, limit := "GOGC", "none", "GOMEMLIMIT or none"
	if g.percent >= 0 {
		percent = strconv.Itoa(g.percent)
	}
	if g.heapFloor > 0 {
		floor = strconv.FormatInt(g.heapFloor>>20, 10) + " MiB"
	}
	if g.memoryLimit > 0 {
		limit = strconv.FormatInt(g.memoryLimit>>20, 10) + " MiB"
	}
	return slog.GroupValue(slog.String("percent", percent), slog.String("heap_floor", floor), slog.String("memory_limit", limit))
}

// Start applies loginhub's defaults for the garbage collector where the
// environment (getenv) sets neither GOGC nor GOMEMLIMIT, and runs the heap
// policy in a goroutine of its own while GOGC is not set. The returned
// stop ends that goroutine, waits for it, and restores the collector's
// previous settings (tests run the hub in process); call it once.
func Start(getenv func(string) string) (Settings, func()) {
	set, restore := applyDefaults(getenv, cgroupMemoryLimit())
	if set.heapFloor == 0 {
		return set, restore
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		newHeapPolicy(set.heapFloor, set.percent).run(ctx, gcTick)
	}()
	return set, func() {
		cancel()
		<-done
		restore()
	}
}

// applyDefaults sets loginhub's defaults for Go's garbage collector where
// the operator did not set Go's own variables (GOGC, GOMEMLIMIT), and
// returns them with a func that restores the previous values.
// containerLimit is the memory limit of the hub's container in bytes, 0 if
// none.
func applyDefaults(getenv func(string) string, containerLimit int64) (Settings, func()) {
	set := Settings{percent: -1}
	var undo []func()
	if getenv("GOGC") == "" {
		prev := debug.SetGCPercent(DefaultPercent)
		undo = append(undo, func() { debug.SetGCPercent(prev) })
		set.percent = DefaultPercent
		set.heapFloor = gcHeapFloor
	}
	if getenv("GOMEMLIMIT") == "" && containerLimit > 0 {
		set.memoryLimit = int64(float64(containerLimit) * LimitShare)
		prev := debug.SetMemoryLimit(set.memoryLimit)
		undo = append(undo, func() { debug.SetMemoryLimit(prev) })
	}
	if limit := debug.SetMemoryLimit(-1); set.heapFloor > 0 && limit < math.MaxInt64 {
		// Near the limit the collector runs ever more often: the floor
		// stays well under it.
		set.heapFloor = min(set.heapFloor, limit/4)
	}
	return set, func() {
		for _, f := range undo {
			f()
		}
	}
}

// heapPolicy runs loginhub's heap policy where GOGC is not set. While the
// live heap is small it raises the GC percent above base so that the heap
// goal stays at floor or above (Go has a GC percent but no least heap
// goal). Once the hub has allocated under gcIdleRate for gcIdleFor, it
// collects and returns the free heap to the operating system, so the
// floor's headroom is held only while the hub is busy (Go's own scavenger
// returns free pages slowly, and garbage not at all until the next cycle,
// which an idle hub may not run for minutes). Its run loop is owned by Start.
type heapPolicy struct {
	floor   uint64
	base    int                // the percent once the live heap is large enough
	read    func() heapReading // the runtime's heap metrics
	set     func(percent int)  // debug.SetGCPercent
	free    func()             // debug.FreeOSMemory
	percent int                // what set was last given

	allocs uint64        // heapReading.allocs at the last tick
	quiet  time.Duration // how long the hub has allocated under gcIdleRate
}

// heapReading is one read of the runtime's heap metrics.
type heapReading struct {
	live   uint64 // live heap at the last GC, 0 before the first
	held   uint64 // heap memory not returned to the system: objects (live or not yet swept), free and unused span space
	allocs uint64 // bytes allocated since the process started
}

func newHeapPolicy(floor int64, base int) *heapPolicy {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	value := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	return &heapPolicy{
		floor: uint64(floor), base: base, percent: base,
		read: func() heapReading {
			metrics.Read(samples)
			return heapReading{live: value(0), allocs: value(1), held: value(2) + value(3) + value(4)}
		},
		set:  func(p int) { debug.SetGCPercent(p) },
		free: debug.FreeOSMemory,
	}
}

// percentFor is the GC percent that makes the goal of a live heap of live
// bytes at least the floor: the goal is max(live, gcMinHeap) *
// (1+percent/100).
func (f *heapPolicy) percentFor(live uint64) int {
	live = max(live, gcMinHeap)
	if live >= f.floor {
		return f.base
	}
	return max(f.base, int(f.floor*100/live)-100)
}

// adjust sets the percent for the current live heap. SetGCPercent stops
// the world, so a change of less than an eighth is left alone.
func (f *heapPolicy) adjust(live uint64) {
	want := f.percentFor(live)
	if d := want - f.percent; d*8 > f.percent || -d*8 > f.percent {
		f.set(want)
		f.percent = want
	}
}

// tick is one look at the heap, elapsed after the last: it adjusts the
// percent, and hands the heap back once the hub has been idle for
// gcIdleFor with at least gcIdleSlack more held than live. It reports
// whether it did.
func (f *heapPolicy) tick(elapsed time.Duration) bool {
	r := f.read()
	f.adjust(r.live)
	allocated := r.allocs - f.allocs
	f.allocs = r.allocs
	if float64(allocated) >= gcIdleRate*elapsed.Seconds() {
		f.quiet = 0
		return false
	}
	f.quiet += elapsed
	if f.quiet < gcIdleFor || r.held < r.live+gcIdleSlack {
		return false
	}
	f.free()
	f.quiet = 0
	// The collection has a new live heap: the next tick sets its percent.
	return true
}

// run ticks every interval until ctx ends.
func (f *heapPolicy) run(ctx context.Context, interval time.Duration) {
	f.tick(interval)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.tick(interval)
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
