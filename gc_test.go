package main

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// TestApplyGCDefaults checks loginhub's GC defaults: GOGC 300 with a heap
// floor, and a soft memory limit of 90 % of the container's, each only
// where the operator did not set Go's own variable, and restored
// afterwards.
func TestApplyGCDefaults(t *testing.T) {
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
	}{
		{"nothing set, in a 1 GiB container", nil, 1 << 30, 300, 966367641},
		{"nothing set, no container limit", nil, 0, 300, l0},
		{"GOGC set", map[string]string{"GOGC": "150"}, 1 << 30, p0, 966367641},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "200MiB"}, 1 << 30, 300, l0},
	}
	for _, tc := range cases {
		set, restore := applyGCDefaults(env(tc.vars), tc.container)
		if got := percent(); got != tc.wantPercent {
			t.Errorf("%s: GC percent %d, want %d", tc.name, got, tc.wantPercent)
		}
		if got := limit(); got != tc.wantLimit {
			t.Errorf("%s: memory limit %d, want %d", tc.name, got, tc.wantLimit)
		}
		if (set.percent >= 0) != (tc.vars["GOGC"] == "") {
			t.Errorf("%s: reported percent %d", tc.name, set.percent)
		}
		if (set.heapFloor == gcHeapFloor) != (tc.vars["GOGC"] == "") || (set.heapFloor != 0 && set.heapFloor != gcHeapFloor) {
			t.Errorf("%s: heap floor %d, want %d only without GOGC", tc.name, set.heapFloor, gcHeapFloor)
		}
		restore()
		if percent() != p0 || limit() != l0 {
			t.Errorf("%s: not restored: percent %d, limit %d; want %d, %d", tc.name, percent(), limit(), p0, l0)
		}
	}
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

// TestHeapFloor: while the live heap is small the GC percent is raised so
// that the heap goal stays at the floor; once the heap is large the base
// percent is back; small changes do not reset it (SetGCPercent stops the
// world); run stops with its context.
func TestHeapFloor(t *testing.T) {
	var live uint64
	var sets []int
	f := &heapFloor{
		floor: 64 << 20, base: 300, percent: 300,
		readLive: func() uint64 { return live },
		set:      func(p int) { sets = append(sets, p) },
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

	live = 8 << 20
	f.adjust()
	live = 8<<20 + 512<<10 // wants 652, within an eighth of 700
	f.adjust()
	live = 32 << 20 // back to the base
	f.adjust()
	if want := []int{700, 300}; !slices.Equal(sets, want) {
		t.Errorf("set %v, want %v", sets, want)
	}

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
