package gcpolicy

import (
	"context"
	"errors"
	"math"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// TestApplyDefaults checks loginhub's GC defaults: GOGC 300 with a heap
// floor (at most a quarter of the memory limit), and a soft memory limit
// of 90 % of the container's, each only where the operator did not set
// Go's own variable, and restored afterwards.
func TestApplyDefaults(t *testing.T) {
	percent := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	limit := func() int64 { return debug.SetMemoryLimit(-1) } // a negative value only reads it
	p0, l0 := percent(), limit()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	cases := []struct {
		name        string
		vars        map[string]string
		container   int64
		wantPercent int   // what the runtime runs with
		wantLimit   int64 // ditto
		wantFloor   int64
	}{
		{"nothing set, in a 1 GiB container", nil, 1 << 30, 300, 966367641, 966367641 / 4},
		{"nothing set, in a 4 GiB container", nil, 4 << 30, 300, 3865470566, gcHeapFloor},
		{"nothing set, no container limit", nil, 0, 300, l0, floorUnder(l0)},
		{"GOGC set", map[string]string{"GOGC": "150"}, 1 << 30, p0, 966367641, 0},
		// The runtime read GOMEMLIMIT at start-up (here: l0), so the floor
		// is under that limit.
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "200MiB"}, 1 << 30, 300, l0, floorUnder(l0)},
	}
	for _, tc := range cases {
		set, restore := applyDefaults(env(tc.vars), tc.container)
		if got := percent(); got != tc.wantPercent {
			t.Errorf("%s: GC percent %d, want %d", tc.name, got, tc.wantPercent)
		}
		if got := limit(); got != tc.wantLimit {
			t.Errorf("%s: memory limit %d, want %d", tc.name, got, tc.wantLimit)
		}
		if (set.percent >= 0) != (tc.vars["GOGC"] == "") {
			t.Errorf("%s: reported percent %d", tc.name, set.percent)
		}
		if set.heapFloor != tc.wantFloor {
			t.Errorf("%s: heap floor %d, want %d", tc.name, set.heapFloor, tc.wantFloor)
		}
		restore()
		if percent() != p0 || limit() != l0 {
			t.Errorf("%s: not restored: percent %d, limit %d; want %d, %d", tc.name, percent(), limit(), p0, l0)
		}
	}
}

// floorUnder is the heap floor under a memory limit.
func floorUnder(limit int64) int64 {
	if limit == math.MaxInt64 {
		return gcHeapFloor
	}
	return min(gcHeapFloor, limit/4)
}

func TestParseMemoryMax(t *testing.T) {
	cases := []struct {
		in   string
		err  error
		want int64
	}{
		{"max\n", nil, 0},
		{"1073741824\n", nil, 1 << 30},
		{"", errors.New("no such file"), 0},
		{"lots", nil, 0},
		{"0\n", nil, 0},
	}
	for _, tc := range cases {
		if got := parseMemoryMax([]byte(tc.in), tc.err); got != tc.want {
			t.Errorf("parseMemoryMax(%q, %v) = %d, want %d", tc.in, tc.err, got, tc.want)
		}
	}
}

// TestHeapPolicy: while the live heap is small the GC percent is raised so
// that the heap goal stays at the floor; once the heap is large the base
// percent is back; small changes do not reset it (SetGCPercent stops the
// world); run stops with its context.
func TestHeapPolicy(t *testing.T) {
	var sets []int
	f := &heapPolicy{
		floor: 64 << 20, base: 300, percent: 300,
		set: func(p int) { sets = append(sets, p) },
	}
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 1500},        // before the first GC: the runtime's 4 MiB base
		{1 << 20, 1500},  // under the 4 MiB base
		{8 << 20, 700},   // goal 8 MiB * 8 = 64 MiB
		{16 << 20, 300},  // 16 MiB * 4 = 64 MiB: the base does it
		{100 << 20, 300}, // above the floor
		{12 << 20, 433},  // 12 MiB * 5.33 = 64 MiB
		{64 << 20, 300},  // at the floor
		{5 << 20, 1180},  // 5 MiB * 12.8 = 64 MiB
		{4 << 20, 1500},  // the runtime's base
	} {
		if got := f.percentFor(c.live); got != c.want {
			t.Errorf("percentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}

	f.adjust(8 << 20)
	f.adjust(8<<20 + 512<<10) // wants 652, within an eighth of 700
	f.adjust(32 << 20)        // back to the base
	if want := []int{700, 300}; !slices.Equal(sets, want) {
		t.Errorf("set %v, want %v", sets, want)
	}

	f.read = func() heapReading { return heapReading{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.run(ctx, time.Hour); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop with its context")
	}
}

// TestHeapPolicyIdleReturn: the heap goes back to the system once the hub
// has allocated under gcIdleRate for gcIdleFor and holds at least
// gcIdleSlack more than is live; not while it is busy, not before it has
// been idle that long, not when there is little to give back, and not
// again until it has been idle that long once more.
func TestHeapPolicyIdleReturn(t *testing.T) {
	const tick = 250 * time.Millisecond
	perTick := uint64(gcIdleRate * tick.Seconds()) // the idle rate's bytes in one tick
	var now heapReading
	frees := 0
	f := &heapPolicy{
		floor: 256 << 20, base: 300, percent: 300,
		read: func() heapReading { return now },
		set:  func(int) {},
		free: func() { frees++ },
	}
	step := func(allocated, held uint64) bool {
		now.allocs += allocated
		now.held = held
		return f.tick(tick)
	}
	now.live = 30 << 20
	idleTicks := int(gcIdleFor / tick)

	for i := range 3 * idleTicks { // busy: allocating at the idle rate or more
		if step(perTick, 200<<20) {
			t.Fatalf("busy tick %d handed the heap back", i)
		}
	}
	for i := 1; i < idleTicks; i++ { // quiet, not long enough yet
		if step(perTick/2, 200<<20) {
			t.Fatalf("handed back after %d quiet ticks, want %d", i, idleTicks)
		}
	}
	if !step(perTick/2, 200<<20) || frees != 1 {
		t.Fatalf("not handed back after %s quiet (frees %d)", gcIdleFor, frees)
	}
	for i := range 4 * idleTicks { // idle, and little left to give
		if step(0, now.live+gcIdleSlack-1) {
			t.Fatalf("idle tick %d handed back %d MiB over the live heap", i, (gcIdleSlack-1)>>20)
		}
	}
	step(perTick, 200<<20) // a burst of work
	for i := 1; i < idleTicks; i++ {
		if step(0, 200<<20) {
			t.Fatalf("handed back %d ticks after the burst", i)
		}
	}
	if !step(0, 200<<20) || frees != 2 {
		t.Fatalf("not handed back after the burst and %s quiet (frees %d)", gcIdleFor, frees)
	}
}
