package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParsePrometheus(t *testing.T) {
	const text = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 10012
process_resident_memory_bytes 1.368064e+07
process_cpu_seconds_total 12.34 1700000000000

go_gc_duration_seconds{quantile="0.5"} 4.2e-05
go_gc_duration_seconds_count 17
weird{path="/a b}",q="say \"hi\" }"} 7
nan_metric NaN
inf_metric +Inf
	indented_metric 3
`
	got, err := parsePrometheus(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"go_goroutines":                          10012,
		"process_resident_memory_bytes":          13680640,
		"process_cpu_seconds_total":              12.34,
		`go_gc_duration_seconds{quantile="0.5"}`: 4.2e-05,
		"go_gc_duration_seconds_count":           17,
		`weird{path="/a b}",q="say \"hi\" }"}`:   7,
		"inf_metric":                             math.Inf(1),
		"indented_metric":                        3,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if v, ok := got["nan_metric"]; !ok || !math.IsNaN(v) {
		t.Errorf("nan_metric = %v, %v; want NaN", v, ok)
	}
	if len(got) != len(want)+1 {
		t.Errorf("got %d series, want %d: %v", len(got), len(want)+1, got)
	}

	m := metricsFrom(got, time.Now())
	if m.Goroutines != 10012 || m.RSS != 13680640 || m.CPU != 12.34 || m.HeapInuse != 0 || m.GCCycles != 17 {
		t.Errorf("metricsFrom: %+v", m)
	}

	for _, bad := range []string{
		"go_goroutines",                  // no value
		"go_goroutines abc",              // not a number
		"go_goroutines 1 2 3",            // too many fields
		`x{a="unterminated} 1`,           // labels never end
		"{a=\"b\"} 1",                    // no name
		"go_goroutines 1\nbroken_line\n", // a bad line after a good one
	} {
		if _, err := parsePrometheus(strings.NewReader(bad)); err == nil {
			t.Errorf("parsePrometheus(%q) accepted it", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1) // 1..100
	}
	cases := []struct {
		s    []int64
		p    float64
		want int64
	}{
		{nil, 50, 0},
		{[]int64{7}, 0, 7},
		{[]int64{7}, 50, 7},
		{[]int64{7}, 100, 7},
		{[]int64{1, 2}, 50, 1},
		{[]int64{1, 2}, 51, 2},
		{[]int64{1, 2, 3, 4}, 50, 2},
		{[]int64{1, 2, 3, 4}, 75, 3},
		{[]int64{1, 2, 3, 4}, 99, 4},
		{hundred, 50, 50},
		{hundred, 90, 90},
		{hundred, 99, 99},
		{hundred, 99.5, 100},
		{hundred, 100, 100},
	}
	for _, tc := range cases {
		if got := percentile(tc.s, tc.p); got != tc.want {
			t.Errorf("percentile(%d samples, %v) = %d, want %d", len(tc.s), tc.p, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var s []int64
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		s = append(s, int64(i)*int64(time.Millisecond))
	}
	got := summarize(s)
	want := Latency{N: 1000, P50: 500, P90: 900, P99: 990, Max: 1000, Mean: 500.5}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if s[0] != int64(1000*time.Millisecond) {
		t.Errorf("summarize reordered its argument")
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
}

func TestCheckLoopbackURL(t *testing.T) {
	ok := []string{
		"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "https://127.9.8.7", "http://[::1]:8080",
		"http://localhost:8080", "http://LOCALHOST", "http://127.0.0.1:8080/prefix/",
	}
	for _, raw := range ok {
		if _, err := checkLoopbackURL("url", raw); err != nil {
			t.Errorf("checkLoopbackURL(%q): %v", raw, err)
		}
	}
	bad := []string{
		"http://10.0.0.1:8080", "http://example.com", "https://example.com:443", "http://0.0.0.0:8080",
		"http://192.168.1.10", "http://[::]:8080", "http://[fe80::1%25lo]:8080", "http://localhost.example.com",
		"http://127.0.0.1.nip.io", "http://[::ffff:10.0.0.1]", "ftp://127.0.0.1", "127.0.0.1:8080",
		"http://user:pw@127.0.0.1", "http://127.0.0.1/?x=1", "",
	}
	for _, raw := range bad {
		if _, err := checkLoopbackURL("url", raw); err == nil {
			t.Errorf("checkLoopbackURL(%q) accepted it", raw)
		}
	}
	u, _ := checkLoopbackURL("url", "http://127.0.0.1:8080/prefix/")
	if u.String() != "http://127.0.0.1:8080/prefix" {
		t.Errorf("trailing slash kept: %s", u)
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.baseURLs, ",") != "http://127.0.0.1:8080" || strings.Join(cfg.wsURLs, ",") != "ws://127.0.0.1:8080/v1/ws" || cfg.origin != "" ||
		cfg.desktops != 1000 || cfg.flows != 1000 || cfg.rate != 200 || cfg.concurrency != 500 || cfg.sources != 8 ||
		cfg.phones != 20 || len(cfg.modes) != 1 || cfg.modes[0] != "push" || cfg.pollInterval != 2*time.Second ||
		cfg.duration != 2*time.Minute || cfg.procs != 1 || cfg.json || cfg.gcPercent != -1 || cfg.memoryLimitMiB != 512 || cfg.cpuProfile != "" || cfg.maxProcs != 1 {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		args  []string
		check func(c config) bool
	}{
		{[]string{"--poll", "500ms"}, func(c config) bool {
			return strings.Join(c.modes, ",") == "push,poll,longpoll" && c.pollInterval == 500*time.Millisecond
		}},
		{[]string{"--poll", "1s", "--mode", "poll"}, func(c config) bool {
			return strings.Join(c.modes, ",") == "poll" && c.pollInterval == time.Second
		}},
		{[]string{"--mode", "longpoll, push"}, func(c config) bool { return strings.Join(c.modes, ",") == "longpoll,push" }},
		{[]string{"--url", "https://localhost:9443/x", "--origin", "https://app.test"}, func(c config) bool {
			return c.wsURLs[0] == "wss://localhost:9443/x/v1/ws" && c.origin == "https://app.test"
		}},
		{[]string{"--url", "http://127.0.0.1:8081, http://127.0.0.2:8082/"}, func(c config) bool {
			return strings.Join(c.baseURLs, " ") == "http://127.0.0.1:8081 http://127.0.0.2:8082" &&
				strings.Join(c.wsURLs, " ") == "ws://127.0.0.1:8081/v1/ws ws://127.0.0.2:8082/v1/ws" && c.nodes() == 2 &&
				c.desktopNode(0) == 0 && c.phoneNode(0) == 1 && c.desktopNode(3) == 1 && c.phoneNode(3) == 0
		}},
		{[]string{"--create-only"}, func(c config) bool {
			return c.create() && c.desktops == 0 && c.flows == defaultCreates && !c.untilDuration && c.procs == 1 && c.maxProcs == 0
		}},
		{[]string{"--create-only", "--gomaxprocs", "1"}, func(c config) bool { return c.maxProcs == 1 }},
		{[]string{"--gomaxprocs", "0"}, func(c config) bool { return c.maxProcs == 0 }},
		{[]string{"--mode", "create", "--flows", "0", "--concurrency", "256"}, func(c config) bool {
			return c.create() && c.flows == 0 && c.untilDuration && c.concurrency == 256
		}},
		{[]string{"--create-only", "--desktops", "0", "--flows", "5000000"}, func(c config) bool { return c.flows == 5000000 }},
		{[]string{"--create-only", "--concurrency", "20000"}, func(c config) bool { return c.procs == 2 }},
		{[]string{"--desktops", "30000"}, func(c config) bool { return c.procs == 3 }},
		{[]string{"--desktops", "100000", "--flows", "0"}, func(c config) bool { return c.procs == 9 }},
		{[]string{"--desktops", "0", "--flows", "1000", "--concurrency", "1000", "--rate", "1000"}, func(c config) bool { return c.procs == 1 }},
		{[]string{"--url", "http://[::1]:8080", "--sources", "0"}, func(c config) bool { return c.ipv6 && c.sources == 0 }},
		// The hub serves /metrics only on its internal listener.
		{[]string{"--metrics", "http://127.0.0.1:9090/"}, func(c config) bool {
			return strings.Join(c.metricsURLs, ",") == "http://127.0.0.1:9090" && c.baseURLs[0] == "http://127.0.0.1:8080"
		}},
		{[]string{"--url", "http://127.0.0.1:8081,http://127.0.0.1:8082", "--metrics", "http://127.0.0.1:9091, http://127.0.0.1:9092"}, func(c config) bool {
			return strings.Join(c.metricsURLs, " ") == "http://127.0.0.1:9091 http://127.0.0.1:9092"
		}},
		{nil, func(c config) bool { return c.metricsURLs == nil }},
	}
	for _, tc := range cases {
		c, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%q: %+v", tc.args, c)
		}
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	cases := []struct {
		args []string
		want string // in the error
	}{
		{[]string{"--url", "http://10.0.0.1:8080"}, "not a loopback"},
		{[]string{"--url", "http://example.com"}, "not a loopback"},
		{[]string{"--url", "http://127.0.0.1:8081,http://10.0.0.1:8082"}, "not a loopback"},
		{[]string{"--url", "http://127.0.0.1:8081,"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:8081,http://127.0.0.1:8081/"}, "twice"},
		{[]string{"--metrics", "http://10.0.0.1:9090"}, "--metrics host"},
		{[]string{"--url", "http://127.0.0.1:8081,http://127.0.0.1:8082", "--metrics", "http://127.0.0.1:9091"}, "one per node"},
		{[]string{"--create-only", "--mode", "push"}, "pick one"},
		{[]string{"--mode", "push,create"}, "alone"},
		{[]string{"--create-only", "--desktops", "10"}, "--desktops"},
		{[]string{"--create-only", "--rate", "100"}, "--rate"},
		{[]string{"--create-only", "--flows", "-1"}, "--flows"},
		{[]string{"--mode", "carrier-pigeon"}, "--mode"},
		{[]string{"--mode", "push,push"}, "twice"},
		{[]string{"--desktops", "-1"}, "--desktops"},
		{[]string{"--flows", "-5"}, "--flows"},
		{[]string{"--flows", "300000"}, "--flows"},
		{[]string{"--desktops", "0", "--flows", "0"}, "nothing to do"},
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--rate", "NaN"}, "--rate"},
		{[]string{"--concurrency", "0"}, "--concurrency"},
		{[]string{"--sources", "-1"}, "--sources"},
		{[]string{"--url", "http://[::1]:8080"}, "IPv6"},
		{[]string{"--phones", "0"}, "--phones"},
		{[]string{"--poll-interval", "1ms", "--mode", "poll"}, "--poll-interval"},
		{[]string{"--longpoll-wait", "31"}, "--longpoll-wait"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--duration", "2h"}, "--duration"},
		{[]string{"--procs", "-1"}, "--procs"},
		{[]string{"--procs", "1", "--desktops", "20000"}, "raise --procs to 2"},
		{[]string{"--procs", "1", "--desktops", "0", "--flows", "20000", "--concurrency", "8000"}, "raise --procs to 2"},
		{[]string{"--desktops", "200000", "--procs", "10"}, "raise --procs to 14"},
		{[]string{"--settle", "-1s"}, "--settle"},
		{[]string{"--gogc", "-1"}, "--gogc"},
		{[]string{"--gomaxprocs", "-2"}, "--gomaxprocs"},
		{[]string{"--gogc", "20000"}, "--gogc"},
		{[]string{"--gogc", "on"}, "--gogc"},
		{[]string{"--memory-limit", "10"}, "--memory-limit"},
		{[]string{"--memory-limit", "100000"}, "--memory-limit"},
		{[]string{"--confirm-waiting", "--desktops", "10", "--flows", "11"}, "more than the 10 waiting desktops"},
		{[]string{"--confirm-waiting", "--create-only"}, "--mode create has none"},
		{[]string{"stray"}, "unexpected argument"},
		{[]string{"--no-such-flag"}, "not defined"},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		_, err := parseFlags(tc.args, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

func TestSourceAddr(t *testing.T) {
	cases := map[int]string{0: "127.0.0.10", 7: "127.0.0.17", 244: "127.0.0.254", 245: "127.0.1.1", 245 + 254: "127.0.2.1"}
	for i, want := range cases {
		if got := sourceAddr(i); got != netip.MustParseAddr(want) {
			t.Errorf("sourceAddr(%d) = %s, want %s", i, got, want)
		}
	}
	last := sourceAddr(maxSourceAddrs - 1).As4()
	if last[2] == 255 && last[3] == 255 || last[3] == 0 {
		t.Errorf("last source address %v", last)
	}
}

// TestChildArgs checks that the children's command lines parse and split
// the work exactly.
func TestChildArgs(t *testing.T) {
	parent, err := parseFlags([]string{"--desktops", "30001", "--flows", "1001", "--rate", "300",
		"--concurrency", "500", "--sources", "4", "--duration", "90s", "--gogc", "800", "--memory-limit", "300", "--cpuprofile", "/tmp/p", "--gomaxprocs", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if parent.procs != 3 {
		t.Fatalf("procs %d, want 3", parent.procs)
	}
	var desktops, flows int
	var rate float64
	for i := range parent.procs {
		args := childArgs(parent, "poll", i, 80*time.Second)
		if args[0] != "bench" {
			t.Fatalf("child args start with %q", args[0])
		}
		c, err := parseFlags(args[1:], io.Discard)
		if err != nil {
			t.Fatalf("child %d: %v (%q)", i, err, args)
		}
		if !c.child || c.childIndex != i || c.procs != 1 || c.modes[0] != "poll" || c.sourceOffset != 4*i ||
			c.duration != 80*time.Second || c.concurrency != 167 || c.gcPercent != 800 || c.memoryLimitMiB != 300 || c.maxProcs != 3 || c.cpuProfile != fmt.Sprintf("/tmp/p.child%d", i) {
			t.Errorf("child %d: %+v", i, c)
		}
		desktops += c.desktops
		flows += c.flows
		rate += c.rate
	}
	if desktops != 30001 || flows != 1001 || math.Abs(rate-300) > 1e-9 {
		t.Errorf("children hold %d desktops, %d flows, %g/s; want 30001, 1001, 300", desktops, flows, rate)
	}
}

func TestWriteTable(t *testing.T) {
	rs := []Result{
		{Mode: "push", Procs: 1, Sources: 8, Desktops: 10, DesktopsOpen: 10, Flows: 5, OK: 4, Errors: 1,
			ErrorKinds: map[string]int{"scan:409_conflict": 1}, Confirm: Latency{N: 4, P50: 1.5, P90: 2, P99: 3, Max: 4, Mean: 2.25},
			Hub: HubStats{Available: true, RSSBefore: 10 << 20, RSSIdle: 11 << 20, BytesPerDesktop: 8704}},
		{Mode: "poll", PollInterval: "2s", Procs: 1, Sources: 8, Flows: 5, OK: 5, StatusRequestsPerFlow: 1.2,
			Notes: []string{"something to know"}},
	}
	var b bytes.Buffer
	writeTable(&b, rs)
	out := b.String()
	for _, want := range []string{"poll (2s)", "confirm→desktop p50/p90/p99/max", "1.50 / 2.00 / 3.00 / 4.00 ms", "confirm→desktop mean", "2.25 ms",
		"8.5 KiB (0.0 KiB / 0.0 KiB)", "1.20", "- (push)", "n/a", "push errors: scan:409_conflict=1", "poll note: something to know"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestChildArgsCreate checks that a create run splits exactly and carries
// its nodes and its end.
func TestChildArgsCreate(t *testing.T) {
	parent, err := parseFlags([]string{"--create-only", "--url", "http://127.0.0.1:8081,http://127.0.0.1:8082",
		"--flows", "1001", "--concurrency", "20001", "--duration", "90s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if parent.procs != 2 {
		t.Fatalf("procs %d, want 2", parent.procs)
	}
	flows, conc := 0, 0
	for i := range parent.procs {
		args := childArgs(parent, modeCreate, i, 80*time.Second)
		c, err := parseFlags(args[1:], io.Discard)
		if err != nil {
			t.Fatalf("child %d: %v (%q)", i, err, args)
		}
		if !c.create() || c.nodes() != 2 || c.untilDuration || c.origin != "" {
			t.Errorf("child %d: %+v", i, c)
		}
		flows += c.flows
		conc += c.concurrency
	}
	if flows != 1001 || conc < 20001 {
		t.Errorf("children create %d tickets on %d connections; want 1001 on at least 20001", flows, conc)
	}

	until, err := parseFlags([]string{"--create-only", "--flows", "0", "--concurrency", "20000", "--duration", "30s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	until.endAt = time.Now().Add(20 * time.Second)
	c, err := parseFlags(childArgs(until, modeCreate, 0, time.Hour)[1:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.untilDuration || c.flows != 0 || c.duration > 20*time.Second || c.duration < 19*time.Second {
		t.Errorf("until-duration child: %+v", c)
	}
}

func TestHistogram(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1e9, 3e11} {
		i := histBucket(v)
		if got := histValue(i); math.Abs(float64(got-v)) > 0.008*float64(v)+1 {
			t.Errorf("histValue(histBucket(%d)) = %d", v, got)
		}
		if i > 0 && histBucket(v-1) > i {
			t.Errorf("buckets not monotonic at %d", v)
		}
	}
	var a, b histogram
	for i := 1; i <= 1000; i++ {
		h := &a
		if i%3 == 0 {
			h = &b
		}
		h.add(time.Duration(i) * time.Millisecond)
	}
	a.merge(b)
	a.trim()
	got := a.summary()
	if got.N != 1000 || got.Max != 1000 || math.Abs(got.Mean-500.5) > 1e-6 {
		t.Errorf("summary %+v", got)
	}
	for _, c := range []struct{ got, want float64 }{{got.P50, 500}, {got.P90, 900}, {got.P99, 990}} {
		if math.Abs(c.got-c.want) > 0.008*c.want {
			t.Errorf("percentile %v, want about %v", c.got, c.want)
		}
	}
	var empty histogram
	if empty.summary() != (Latency{}) {
		t.Errorf("empty histogram: %+v", empty.summary())
	}
}

func TestOriginOf(t *testing.T) {
	cases := map[string]string{
		"http://loginhub.test/s/abc.def":   "http://loginhub.test",
		"https://login.example.com:8443/s": "https://login.example.com:8443",
		"http://127.0.0.1:8080":            "http://127.0.0.1:8080",
		"":                                 "",
		"ftp://x/y":                        "",
		"/s/relative":                      "",
	}
	for in, want := range cases {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
	e := desktopEnv{}
	d := &desktop{base: "http://127.0.0.1:8081", t: ticket{QRURL: "http://loginhub.test/s/x"}}
	if got := e.origin(d); got != "http://loginhub.test" {
		t.Errorf("origin from qr_url: %q", got)
	}
	d.t.QRURL = ""
	if got := e.origin(d); got != "http://127.0.0.1:8081" {
		t.Errorf("origin without qr_url: %q", got)
	}
	e.cfg.origin = "https://app.test"
	if got := e.origin(d); got != "https://app.test" {
		t.Errorf("--origin: %q", got)
	}
}

func TestWriteTableNodesAndCreate(t *testing.T) {
	nodes := []string{"http://127.0.0.1:8091", "http://127.0.0.1:8092"}
	var b bytes.Buffer
	writeTable(&b, []Result{{Mode: "push", Procs: 1, Sources: 8, Nodes: nodes, CrossNode: true, Desktops: 10, DesktopsOpen: 10,
		Flows: 5, OK: 5, Hub: HubStats{Available: true, GCCyclesFlows: 3}, HubPerNode: []NodeStats{
			{URL: nodes[0], RSSBefore: 10 << 20, RSSIdle: 12 << 20, RSSAfter: 13 << 20, GoroutinesIdle: 15, CPUFlowsPercent: 40},
			{URL: nodes[1], RSSIdle: 1 << 20, CPUFlowsPercent: 41.5},
		}}})
	out := b.String()
	if !regexp.MustCompile(`hub GC cycles, during flows +3\b`).MatchString(out) {
		t.Errorf("table lacks the hub's 3 GC cycles during the flows:\n%s", out)
	}
	for _, want := range []string{"2, phone calls on another node than the desktop", "hub node (push)", "CPU flows",
		"127.0.0.1:8091", "10.0 / 12.0 / 13.0 MiB", "40.0%", "127.0.0.1:8092", "41.5%"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	writeTable(&b, []Result{{Mode: "create", Procs: 1, Sources: 8, Nodes: nodes[:1], Flows: 1000, OK: 999, Errors: 1,
		CreatesPerSec: 21234.4, Create: Latency{N: 999, P50: 1.2, P90: 2, P99: 3.5, Max: 9}, Hub: HubStats{Available: true, CPUFlowsPercent: 150}}})
	out = b.String()
	for _, want := range []string{"creations ok/asked", "999/1000", "21234 creations/s", "1.20 / 2.00 / 3.50 / 9.00 ms", "hub CPU, during creates"} {
		if !strings.Contains(out, want) {
			t.Errorf("create table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "flows ok/total") || strings.Contains(out, "confirm→desktop") || strings.Contains(out, "GC cycles") {
		t.Errorf("create table shows flow rows:\n%s", out)
	}
}

func TestPacedBoundsConcurrency(t *testing.T) {
	var mu sync.Mutex
	running, peak, ran := 0, 0, 0
	full := make(chan struct{})    // closed when 3 runs are in flight
	release := make(chan struct{}) // lets them all go
	go func() {
		select {
		case <-full:
		case <-time.After(10 * time.Second):
			t.Error("3 runs were never in flight at once")
		}
		close(release)
	}()
	started := paced(context.Background(), 50, 0, 3, func(int) {
		mu.Lock()
		running++
		peak = max(peak, running)
		if running == 3 && peak == 3 && ran == 0 {
			close(full)
		}
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		ran++
		mu.Unlock()
	})
	if started != 50 || ran != 50 {
		t.Errorf("started %d, ran %d, want 50 and 50", started, ran)
	}
	if peak != 3 {
		t.Errorf("%d runs at once, want the limit, 3", peak)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	started = paced(ctx, 1000, time.Millisecond, 2, func(int) {
		mu.Lock()
		n++
		if n == 5 {
			cancel()
		}
		mu.Unlock()
	})
	if started < 5 || started >= 1000 || started != n {
		t.Errorf("after cancel: started %d, ran %d; want them equal, at least 5 and well under 1000", started, n)
	}
}

// TestSettleWaitsForThreeReads: a hub whose RSS drops a moment after the
// desktops opened (it hands its idle heap back to the system) is measured
// after the drop, though its first two reads agree; a hub that keeps
// moving is reported as not settled once the wait is over.
func TestSettleWaitsForThreeReads(t *testing.T) {
	var mu sync.Mutex
	reads := 0
	rssAt := func(n int) float64 { return 100e6 }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		rss := rssAt(reads)
		reads++
		mu.Unlock()
		fmt.Fprintf(w, "go_goroutines 20\nprocess_resident_memory_bytes %g\nprocess_cpu_seconds_total 1\n", rss)
	}))
	defer srv.Close()
	p := newProbe([]string{srv.URL})
	defer p.close()
	p.every = 10 * time.Millisecond

	mu.Lock()
	rssAt = func(n int) float64 { // 100 MB, 100 MB, then 60 MB from the third read on
		if n < 2 {
			return 100e6
		}
		return 60e6
	}
	mu.Unlock()
	first, last, settled, err := p.settle(context.Background(), 5*time.Second)
	if err != nil || !settled {
		t.Fatalf("settle: settled %v, err %v", settled, err)
	}
	if first[0].RSS != 100e6 || last[0].RSS != 60e6 {
		t.Errorf("settle read RSS %g then %g, want 100e6 then 60e6 (after the drop)", first[0].RSS, last[0].RSS)
	}
	mu.Lock()
	if reads != 5 {
		t.Errorf("settle took %d reads, want 5 (two before the drop, three agreeing after it)", reads)
	}
	mu.Unlock()

	mu.Lock()
	reads = 0
	rssAt = func(n int) float64 { return 100e6 + 10e6*float64(n) } // never settles
	mu.Unlock()
	_, _, settled, err = p.settle(context.Background(), 200*time.Millisecond)
	if err != nil || settled {
		t.Errorf("a hub still growing: settled %v, err %v; want not settled", settled, err)
	}
}
