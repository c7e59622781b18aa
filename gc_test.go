package main

import (
	"errors"
	"runtime/debug"
	"testing"
)

// TestApplyGCDefaults checks loginhub's GC defaults: GOGC 300 and a soft
// memory limit of 90 % of the container's, each only where the operator did
// not set Go's own variable, and restored afterwards.
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
