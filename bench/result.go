package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Result is one mode's merged outcome (the --json output, one per line).
type Result struct {
	Mode         string `json:"mode"`
	PollInterval string `json:"poll_interval,omitempty"`
	Procs        int    `json:"procs"`
	Sources      int    `json:"sources_per_proc"`

	// Nodes are the hubs driven (--url); with more than one, CrossNode
	// flows put their phone on another node than their desktop.
	Nodes     []string `json:"nodes"`
	CrossNode bool     `json:"cross_node"`

	Desktops     int     `json:"desktops"`      // idle desktops asked for
	DesktopsOpen int     `json:"desktops_open"` // idle desktops that were waiting
	OpenSeconds  float64 `json:"open_seconds"`  // time to open them

	Flows       int            `json:"flows"` // --mode create: creations asked for (0 = until --duration)
	OK          int            `json:"ok"`
	Errors      int            `json:"errors"` // failed flows, idle desktops that failed to open or later
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	NotStarted  int            `json:"not_started"`
	Cancelled   int            `json:"cancelled"` // in flight when --duration or a signal ended the run
	FlowSeconds float64        `json:"flow_seconds"`
	FlowsPerSec float64        `json:"flows_per_second"`

	OpenLatency    Latency `json:"open"`            // create + watch until the pending state
	Scanned        Latency `json:"scanned"`         // scan sent → desktop noticed the scan
	Confirm        Latency `json:"confirm"`         // confirm sent → desktop noticed "confirmed"
	ConfirmArrived Latency `json:"confirm_arrived"` // confirm sent → the event reached the desktop's socket
	Redeem         Latency `json:"redeem"`          // redeem request

	// --mode create: POST /v1/qr/tickets back to back.
	Create        Latency `json:"create"`
	CreatesPerSec float64 `json:"creates_per_second"`

	StatusRequestsPerFlow float64 `json:"status_requests_per_flow"` // poll modes: status GETs by a flow's desktop
	IdleRequestsPerSec    float64 `json:"idle_requests_per_second"` // poll modes: by the idle desktops, during the flows

	// Burst is --password-burst's outcome; nil without one.
	Burst *BurstStats `json:"password_burst,omitempty"`

	Hub                  HubStats    `json:"hub"`                     // summed over the nodes
	HubPerNode           []NodeStats `json:"hub_per_node"`            // one per node, in --url order
	BenchCPUPercent      float64     `json:"bench_cpu_percent"`       // this tool (all its processes), whole mode
	BenchCPUFlowsPercent float64     `json:"bench_cpu_flows_percent"` // this tool (all its processes) while the flows ran
	PeakSockets          int64       `json:"peak_sockets_per_proc"`
	Incomplete           bool        `json:"incomplete"`
	Notes                []string    `json:"notes,omitempty"`
}

// HubStats is what the hub's /metrics said. Memory is in bytes.
type HubStats struct {
	Available            bool    `json:"available"`
	Settled              bool    `json:"settled"`
	RSSBefore            float64 `json:"rss_before"`
	RSSIdle              float64 `json:"rss_idle"`
	RSSAfter             float64 `json:"rss_after"`
	HeapBefore           float64 `json:"heap_inuse_before"`
	HeapIdle             float64 `json:"heap_inuse_idle"`
	StackBefore          float64 `json:"stack_inuse_before"`
	StackIdle            float64 `json:"stack_inuse_idle"`
	BytesPerDesktop      float64 `json:"rss_bytes_per_idle_desktop"`
	HeapBytesPerDesktop  float64 `json:"heap_bytes_per_idle_desktop"`
	StackBytesPerDesktop float64 `json:"stack_bytes_per_idle_desktop"`
	GoroutinesBefore     float64 `json:"goroutines_before"`
	GoroutinesIdle       float64 `json:"goroutines_idle"`
	GoroutinesAfter      float64 `json:"goroutines_after"`
	GoroutinesPerDesktop float64 `json:"goroutines_per_idle_desktop"`
	SocketsIdle          float64 `json:"open_sockets_idle"`
	SlowDropped          float64 `json:"slow_consumers_dropped"`
	CPUIdlePercent       float64 `json:"cpu_idle_percent"`  // while the idle desktops wait
	CPUFlowsPercent      float64 `json:"cpu_flows_percent"` // during the flows
	// GCCyclesFlows is how many garbage collections the hub(s) completed
	// during the flows: a confirmation that meets a cycle's marking waits
	// longer, so it helps to read a tail.
	GCCyclesFlows float64 `json:"gc_cycles_flows"`
}

// BurstStats is how a --password-burst went: password logins sent at
// once during the flows.
type BurstStats struct {
	Logins         int            `json:"logins"`
	Users          int            `json:"users"`
	Wrong          int            `json:"wrong"`   // sent with a wrong password
	Answers        map[string]int `json:"answers"` // "200", "401_unauthorized", "503_upstream_unavailable", transport errors
	OK             int            `json:"ok"`
	Busy           int            `json:"busy"` // 503: too many hashes waiting
	PrepareSeconds float64        `json:"prepare_seconds"`
	StartSeconds   float64        `json:"start_seconds"` // into the flows
	Seconds        float64        `json:"seconds"`       // from sending them to the last answer
	Latency        Latency        `json:"latency"`       // every answer
	OKLatency      Latency        `json:"ok_latency"`    // 200s
	// The hubs' RSS, summed over the nodes: read just before, and the
	// highest of the reads every 100 ms until a second after the last
	// answer.
	RSSBefore float64 `json:"rss_before"`
	PeakRSS   float64 `json:"peak_rss"`
	RSSReads  int     `json:"rss_reads"`
	// PeakHeapGoal is the highest heap goal read (go_memstats_next_gc_bytes):
	// the garbage of finished hashes builds up to it between collections.
	PeakHeapGoal float64 `json:"peak_heap_goal"`
	// Confirm→desktop of the flows whose confirm was sent between the
	// burst's start and its last answer, and of the others.
	ConfirmDuring  Latency `json:"confirm_during"`
	ConfirmOutside Latency `json:"confirm_outside"`
}

// NodeStats is one node's share of HubStats.
type NodeStats struct {
	URL              string  `json:"url"`
	RSSBefore        float64 `json:"rss_before"`
	RSSIdle          float64 `json:"rss_idle"`
	RSSAfter         float64 `json:"rss_after"`
	GoroutinesBefore float64 `json:"goroutines_before"`
	GoroutinesIdle   float64 `json:"goroutines_idle"`
	GoroutinesAfter  float64 `json:"goroutines_after"`
	SocketsIdle      float64 `json:"open_sockets_idle"`
	CPUIdlePercent   float64 `json:"cpu_idle_percent"`
	CPUFlowsPercent  float64 `json:"cpu_flows_percent"`
}

// Latency summarizes samples, in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// percentile is the nearest-rank p-th percentile of sorted samples: the
// smallest sample that at least p % of the samples are at or below.
func percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// summarize sorts a copy of samples (nanoseconds) and summarizes it.
func summarize(samples []int64) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		N: len(s), P50: ms(percentile(s, 50)), P90: ms(percentile(s, 90)), P99: ms(percentile(s, 99)),
		Max: ms(s[len(s)-1]), Mean: sum / float64(len(s)) / 1e6,
	}
}

// writeTable prints the results side by side, one column per mode.
func writeTable(w io.Writer, rs []Result) {
	if len(rs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, f func(r Result) string) {
		cells := []string{label}
		for _, r := range rs {
			cells = append(cells, f(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	anyFlows := slices.ContainsFunc(rs, func(r Result) bool { return r.Flows > 0 && r.Mode != modeCreate })
	anyPoll := slices.ContainsFunc(rs, func(r Result) bool { return r.Mode == modePoll || r.Mode == modeLongPoll })
	anyIdle := slices.ContainsFunc(rs, func(r Result) bool { return r.Desktops > 0 })
	anyCreate := slices.ContainsFunc(rs, func(r Result) bool { return r.Mode == modeCreate })
	maxNodes := 0
	for _, r := range rs {
		maxNodes = max(maxNodes, len(r.Nodes))
	}

	row("mode", func(r Result) string {
		if r.PollInterval != "" {
			return r.Mode + " (" + r.PollInterval + ")"
		}
		return r.Mode
	})
	row("processes × sources", func(r Result) string { return fmt.Sprintf("%d × %d", r.Procs, r.Sources) })
	row("nodes", func(r Result) string { return nodesCell(r) })
	if anyIdle {
		row("idle desktops open", func(r Result) string {
			return fmt.Sprintf("%d/%d in %.1fs", r.DesktopsOpen, r.Desktops, r.OpenSeconds)
		})
	}
	if anyFlows {
		row("flows ok/total", func(r Result) string { return fmt.Sprintf("%d/%d", r.OK, r.Flows) })
	}
	if anyCreate {
		row("creations ok/asked", func(r Result) string {
			if r.Flows == 0 {
				return fmt.Sprintf("%d (until --duration)", r.OK)
			}
			return fmt.Sprintf("%d/%d", r.OK, r.Flows)
		})
	}
	row("errors", func(r Result) string { return fmt.Sprint(r.Errors) })
	if slices.ContainsFunc(rs, func(r Result) bool { return r.NotStarted > 0 || r.Cancelled > 0 }) {
		row("flows not started/cut short", func(r Result) string { return fmt.Sprintf("%d/%d", r.NotStarted, r.Cancelled) })
	}
	if anyFlows {
		row("flow phase", func(r Result) string { return fmt.Sprintf("%.2fs", r.FlowSeconds) })
		row("throughput", func(r Result) string { return fmt.Sprintf("%.1f flows/s", r.FlowsPerSec) })
		row("open (create+watch) p50/p99", func(r Result) string { return lat(r.OpenLatency, r.OpenLatency.P50, r.OpenLatency.P99) })
		row("scan→desktop p50/p99", func(r Result) string { return lat(r.Scanned, r.Scanned.P50, r.Scanned.P99) })
		row("confirm→desktop p50/p90/p99/max", func(r Result) string {
			return lat(r.Confirm, r.Confirm.P50, r.Confirm.P90, r.Confirm.P99, r.Confirm.Max)
		})
		row("confirm→desktop mean", func(r Result) string { return lat(r.Confirm, r.Confirm.Mean) })
		row("confirm→socket p50/p90/p99/max", func(r Result) string {
			return lat(r.ConfirmArrived, r.ConfirmArrived.P50, r.ConfirmArrived.P90, r.ConfirmArrived.P99, r.ConfirmArrived.Max)
		})
		row("redeem p50/p99", func(r Result) string { return lat(r.Redeem, r.Redeem.P50, r.Redeem.P99) })
		if anyPoll {
			row("status requests per flow", func(r Result) string {
				if r.Mode == modePush {
					return "- (push)"
				}
				return fmt.Sprintf("%.2f", r.StatusRequestsPerFlow)
			})
			if anyIdle {
				row("idle desktops' requests/s", func(r Result) string {
					if r.Mode == modePush {
						return "- (push)"
					}
					return fmt.Sprintf("%.0f", r.IdleRequestsPerSec)
				})
			}
		}
	}
	if slices.ContainsFunc(rs, func(r Result) bool { return r.Burst != nil }) {
		writeBurstRows(row)
	}
	if anyCreate {
		row("create phase", func(r Result) string { return fmt.Sprintf("%.2fs", r.FlowSeconds) })
		row("throughput", func(r Result) string { return fmt.Sprintf("%.0f creations/s", r.CreatesPerSec) })
		row("create p50/p90/p99/max", func(r Result) string {
			return lat(r.Create, r.Create.P50, r.Create.P90, r.Create.P99, r.Create.Max)
		})
	}
	hub := func(label string, f func(r Result) string) {
		row(label, func(r Result) string {
			if !r.Hub.Available {
				return "n/a"
			}
			return f(r)
		})
	}
	hub("hub RSS before/idle/after", func(r Result) string {
		return fmt.Sprintf("%s / %s / %s", mib(r.Hub.RSSBefore), mib(r.Hub.RSSIdle), mib(r.Hub.RSSAfter))
	})
	if anyIdle {
		hub("hub per idle desktop: RSS (heap/stack)", func(r Result) string {
			if r.DesktopsOpen == 0 {
				return "-"
			}
			return fmt.Sprintf("%s (%s / %s)", kib(r.Hub.BytesPerDesktop), kib(r.Hub.HeapBytesPerDesktop), kib(r.Hub.StackBytesPerDesktop))
		})
	}
	hub("hub goroutines before/idle/after", func(r Result) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f", r.Hub.GoroutinesBefore, r.Hub.GoroutinesIdle, r.Hub.GoroutinesAfter)
	})
	if anyIdle {
		hub("hub goroutines per idle desktop", func(r Result) string {
			if r.DesktopsOpen == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", r.Hub.GoroutinesPerDesktop)
		})
		hub("hub open sockets (idle)", func(r Result) string { return num(r.Hub.SocketsIdle) })
		hub("hub CPU, desktops idle", func(r Result) string { return fmt.Sprintf("%.1f%%", r.Hub.CPUIdlePercent) })
	}
	if anyFlows {
		hub("hub CPU, during flows", func(r Result) string { return fmt.Sprintf("%.1f%%", r.Hub.CPUFlowsPercent) })
		hub("hub GC cycles, during flows", func(r Result) string { return num(r.Hub.GCCyclesFlows) })
	}
	if anyCreate {
		hub("hub CPU, during creates", func(r Result) string { return fmt.Sprintf("%.1f%%", r.Hub.CPUFlowsPercent) })
	}
	hub("hub slow consumers dropped", func(r Result) string { return num(r.Hub.SlowDropped) })
	row("bench CPU (all procs)", func(r Result) string { return fmt.Sprintf("%.0f%%", r.BenchCPUPercent) })
	row("bench CPU, during flows", func(r Result) string { return fmt.Sprintf("%.1f%%", r.BenchCPUFlowsPercent) })
	row("peak sockets per bench proc", func(r Result) string { return fmt.Sprint(r.PeakSockets) })
	if slices.ContainsFunc(rs, func(r Result) bool { return r.Incomplete }) {
		row("incomplete", func(r Result) string { return fmt.Sprint(r.Incomplete) })
	}
	tw.Flush()
	if maxNodes > 1 {
		for _, r := range rs {
			writeNodes(w, r)
		}
	}

	for _, r := range rs {
		if len(r.ErrorKinds) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(r.ErrorKinds)) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, r.ErrorKinds[k]))
			}
			fmt.Fprintf(w, "%s errors: %s\n", r.Mode, strings.Join(parts, " "))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "%s note: %s\n", r.Mode, n)
		}
	}
}

// nodesCell says how many hubs were driven and how the work was spread.
func nodesCell(r Result) string {
	n := len(r.Nodes)
	switch {
	case n <= 1:
		return "1"
	case r.Mode == modeCreate:
		return fmt.Sprintf("%d, connections spread over them; hub figures summed", n)
	case r.CrossNode:
		return fmt.Sprintf("%d, phone calls on another node than the desktop; hub figures summed", n)
	}
	return fmt.Sprintf("%d, desktops spread over them; hub figures summed", n)
}

// writeNodes prints each node's figures, one line per node, below the
// table (the table's hub rows sum them).
func writeNodes(w io.Writer, r Result) {
	if len(r.HubPerNode) < 2 {
		return
	}
	idle := r.Desktops > 0
	busy := r.Flows > 0 || r.Mode == modeCreate
	phase := "flows"
	if r.Mode == modeCreate {
		phase = "creates"
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"hub node (" + r.Mode + ")", "RSS before/idle/after", "goroutines before/idle/after"}
	if idle {
		head = append(head, "sockets idle", "CPU idle")
	}
	if busy {
		head = append(head, "CPU "+phase)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, n := range r.HubPerNode {
		cells := []string{strings.TrimPrefix(strings.TrimPrefix(n.URL, "http://"), "https://"),
			fmt.Sprintf("%.1f / %.1f / %.1f MiB", n.RSSBefore/(1<<20), n.RSSIdle/(1<<20), n.RSSAfter/(1<<20)),
			fmt.Sprintf("%.0f / %.0f / %.0f", n.GoroutinesBefore, n.GoroutinesIdle, n.GoroutinesAfter)}
		if idle {
			cells = append(cells, num(n.SocketsIdle), fmt.Sprintf("%.1f%%", n.CPUIdlePercent))
		}
		if busy {
			cells = append(cells, fmt.Sprintf("%.1f%%", n.CPUFlowsPercent))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

// lat formats latencies in ms.
func lat(l Latency, vs ...float64) string {
	if l.N == 0 {
		return "-"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = ms(v)
	}
	return strings.Join(parts, " / ") + " ms"
}

func ms(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(b float64) string {
	if math.IsNaN(b) {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func kib(b float64) string {
	if math.IsNaN(b) {
		return "?"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "?"
	}
	return fmt.Sprintf("%.0f", v)
}

// writeBurstRows adds --password-burst's rows to writeTable's.
func writeBurstRows(row func(label string, f func(r Result) string)) {
	burst := func(label string, f func(b *BurstStats) string) {
		row(label, func(r Result) string {
			if r.Burst == nil {
				return "-"
			}
			return f(r.Burst)
		})
	}
	burst("password burst", func(b *BurstStats) string {
		return fmt.Sprintf("%d logins at once, %.1fs into the flows; %d users, %d wrong passwords", b.Logins, b.StartSeconds, b.Users, b.Wrong)
	})
	burst("password answers", func(b *BurstStats) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(b.Answers)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, b.Answers[k]))
		}
		return strings.Join(parts, " ")
	})
	burst("password burst lasted", func(b *BurstStats) string { return fmt.Sprintf("%.2fs", b.Seconds) })
	burst("password login p50/p99/max", func(b *BurstStats) string {
		return lat(b.Latency, b.Latency.P50, b.Latency.P99, b.Latency.Max)
	})
	burst("password login 200s p50/p99/max", func(b *BurstStats) string {
		return lat(b.OKLatency, b.OKLatency.P50, b.OKLatency.P99, b.OKLatency.Max)
	})
	burst("hub RSS at burst start / peak", func(b *BurstStats) string {
		if b.RSSReads == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%s / %s (%d reads)", mib(b.RSSBefore), mib(b.PeakRSS), b.RSSReads)
	})
	burst("hub heap goal, peak", func(b *BurstStats) string {
		if b.RSSReads == 0 {
			return "n/a"
		}
		return mib(b.PeakHeapGoal)
	})
	burst("confirm→desktop during burst p50/p99/max (n)", func(b *BurstStats) string {
		return lat(b.ConfirmDuring, b.ConfirmDuring.P50, b.ConfirmDuring.P99, b.ConfirmDuring.Max) + fmt.Sprintf(" (%d)", b.ConfirmDuring.N)
	})
	burst("confirm→desktop outside it p50/p99/max (n)", func(b *BurstStats) string {
		return lat(b.ConfirmOutside, b.ConfirmOutside.P50, b.ConfirmOutside.P99, b.ConfirmOutside.Max) + fmt.Sprintf(" (%d)", b.ConfirmOutside.N)
	})
	burst("setting up password users", func(b *BurstStats) string { return fmt.Sprintf("%.1fs", b.PrepareSeconds) })
}
