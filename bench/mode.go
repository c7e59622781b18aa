package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// checkHub fails fast when nothing answers at one of the URLs.
func checkHub(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	errs := make([]error, cfg.nodes())
	var wg sync.WaitGroup
	for i, base := range cfg.baseURLs {
		wg.Go(func() { errs[i] = cfg.probe.checkNode(ctx, base) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (p *probe) checkNode(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: no hub answering at %s: %w", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: %s/healthz: status %d", base, resp.StatusCode)
	}
	return nil
}

// parallel calls f for every worker at once.
func parallel[T any](ws []worker, f func(worker) (T, error)) ([]T, error) {
	out := make([]T, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { out[i], errs[i] = f(w) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// runMode runs both phases of one mode and merges what every process saw.
//
// A run of a mode has two phases:
//
//  1. Idle: --desktops pages each create a ticket and wait on it (push: a
//     WebSocket watch; poll: GET the status every --poll-interval;
//     longpoll: GET ...?since=N&wait=25 in a loop). When all are waiting,
//     bench waits for the hub's RSS and goroutine count to settle (three
//     reads 1 s apart within 2 %, at most 10 s) and reports the growth divided by
//     the number of desktops: bytes and goroutines per waiting desktop, and
//     the hub's CPU while they just wait.
//  2. Flows: --flows logins started at --rate per second, at most
//     --concurrency at once. Each opens its own desktop (ticket + watch as
//     above), a sandbox phone scans and confirms, and the desktop redeems
//     once it has noticed "confirmed". Measured: scan→desktop "scanned" and
//     confirm→desktop "confirmed" notice latency, redeem latency, the status
//     requests the desktop made, and the hub's CPU during the phase.
func runMode(ctx context.Context, cfg config, mode string, lg *logger) (res Result, err error) {
	res = Result{Mode: mode, Procs: cfg.procs, Sources: cfg.sources, Desktops: cfg.desktops, Flows: cfg.flows,
		Nodes: cfg.baseURLs, CrossNode: cfg.nodes() > 1 && mode != modeCreate && cfg.flows > 0,
		ErrorKinds: map[string]int{}, NotStarted: cfg.flows}
	switch mode {
	case modePoll:
		res.PollInterval = cfg.pollInterval.String()
	case modeLongPoll:
		res.PollInterval = fmt.Sprintf("wait=%ds", cfg.longPollWait)
	}
	wall0, cpu0 := time.Now(), cpuTime()

	var b *burster
	var prepSeconds float64
	if cfg.passwordBurst > 0 {
		b = newBurster(cfg)
		defer b.close()
		lg.Printf("%s: preparing %d password users for a burst of %d logins", mode, cfg.burstUsers, cfg.passwordBurst)
		t := time.Now()
		if err := b.prepare(ctx); err != nil {
			return res, err
		}
		prepSeconds = time.Since(t).Seconds()
	}

	before, merr := cfg.probe.readNodes(ctx)
	hubOK := merr == nil
	if !hubOK {
		lg.Printf("%s: hub metrics unavailable, reporting no hub figures: %v", mode, merr)
		res.Notes = append(res.Notes, "hub /metrics unavailable: no hub figures")
	}

	workers, err := startWorkers(ctx, cfg, mode, lg)
	if err != nil {
		return res, err
	}
	closeAll := func() {
		reps, _ := parallel(workers, func(w worker) (closeReport, error) { return w.close(), nil })
		for _, r := range reps {
			mergeCounts(res.ErrorKinds, r.IdleErrors)
			res.PeakSockets = max(res.PeakSockets, r.PeakSockets)
		}
	}

	// Phase 1: idle desktops.
	if cfg.desktops > 0 {
		lg.Printf("%s: opening %d idle desktops from %d source address(es) in %d process(es) on %d node(s)",
			mode, cfg.desktops, max(cfg.sources, 1)*cfg.procs, cfg.procs, cfg.nodes())
	}
	t := time.Now()
	idles, err := parallel(workers, func(w worker) (idleReport, error) { return w.openIdle(ctx) })
	res.OpenSeconds = time.Since(t).Seconds()
	for _, r := range idles {
		res.DesktopsOpen += r.Opened
		mergeCounts(res.ErrorKinds, r.Errors)
	}
	if err != nil {
		closeAll()
		return res, err
	}
	idle := before
	cpuIdle := make([]float64, cfg.nodes())
	if hubOK && res.DesktopsOpen > 0 && ctx.Err() == nil {
		lg.Printf("%s: %d desktops waiting (opened in %.1fs); letting the hub settle", mode, res.DesktopsOpen, res.OpenSeconds)
		first, last, settled, err := cfg.probe.settle(ctx, cfg.settle)
		if err == nil {
			idle = last
			res.Hub.Settled = settled
			if !settled {
				res.Notes = append(res.Notes, fmt.Sprintf("hub RSS/goroutines still moving after %s: per-desktop figures are rough", cfg.settle))
			}
		}
		if err == nil && cfg.settle > 0 {
			// Idle CPU over at least 3 s: the counter ticks in 10 ms.
			if wait := time.Until(first.sum().At.Add(3 * time.Second)); wait > 0 {
				sleepCtx(ctx, wait)
			}
			if end, err := cfg.probe.readNodes(ctx); err == nil {
				res.Hub.CPUIdlePercent = cpuPercent(first.sum(), end.sum())
				for k := range end {
					cpuIdle[k] = cpuPercent(first[k], end[k])
				}
			}
		}
	}

	// Phase 2: flows, or creates.
	after := idle
	cpuFlows := make([]float64, cfg.nodes())
	if (cfg.flows > 0 || cfg.untilDuration || b != nil) && ctx.Err() == nil {
		if mode == modeCreate {
			what := fmt.Sprintf("%d ticket creations", cfg.flows)
			if cfg.untilDuration {
				what = fmt.Sprintf("ticket creations until %s", cfg.endAt.Format(time.TimeOnly))
			}
			lg.Printf("%s: %s on %d keep-alive connection(s)", mode, what, cfg.concurrency)
		} else {
			lg.Printf("%s: %d flows at %g/s, at most %d in flight", mode, cfg.flows, cfg.rate, cfg.concurrency)
		}
		m0, err0 := cfg.probe.readNodes(ctx)
		t := time.Now()
		burst := startBurst(ctx, cfg, b, hubOK, t.Add(cfg.burstDelay()), lg)
		frs, err := parallel(workers, func(w worker) (flowReport, error) { return w.runFlows(ctx) })
		res.FlowSeconds = time.Since(t).Seconds()
		<-burst.done
		mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m1, err1 := cfg.probe.readNodes(mctx)
		cancel()
		if hubOK && err0 == nil && err1 == nil {
			res.Hub.CPUFlowsPercent = cpuPercent(m0.sum(), m1.sum())
			res.Hub.GCCyclesFlows = m1.sum().GCCycles - m0.sum().GCCycles
			for k := range m1 {
				cpuFlows[k] = cpuPercent(m0[k], m1[k])
			}
			after = m1
		}
		var all flowReport
		for _, r := range frs {
			all.Started += r.Started
			all.OK += r.OK
			all.Cancelled += r.Cancelled
			all.Open = append(all.Open, r.Open...)
			all.Scanned = append(all.Scanned, r.Scanned...)
			all.Confirm = append(all.Confirm, r.Confirm...)
			all.ConfirmAt = append(all.ConfirmAt, r.ConfirmAt...)
			all.ConfirmArrived = append(all.ConfirmArrived, r.ConfirmArrived...)
			all.Redeem = append(all.Redeem, r.Redeem...)
			all.Create.merge(r.Create)
			all.StatusRequests += r.StatusRequests
			all.IdleRequests += r.IdleRequests
			all.CPUNanos += r.CPUNanos
			mergeCounts(res.ErrorKinds, r.Errors)
		}
		res.OK = all.OK
		res.NotStarted = cfg.flows - all.Started
		if cfg.untilDuration {
			res.NotStarted = 0
		}
		res.Cancelled = all.Cancelled
		res.OpenLatency = summarize(all.Open)
		res.Scanned = summarize(all.Scanned)
		res.Confirm = summarize(all.Confirm)
		res.ConfirmArrived = summarize(all.ConfirmArrived)
		res.Redeem = summarize(all.Redeem)
		res.Create = all.Create.summary()
		if b != nil {
			res.Burst = burst.stats(b.plan, all, t)
			res.Burst.PrepareSeconds = prepSeconds
		}
		if res.FlowSeconds > 0 {
			if mode == modeCreate {
				res.CreatesPerSec = float64(all.OK) / res.FlowSeconds
			} else {
				res.FlowsPerSec = float64(all.OK) / res.FlowSeconds
			}
			res.IdleRequestsPerSec = float64(all.IdleRequests) / res.FlowSeconds
			res.BenchCPUFlowsPercent = 100 * time.Duration(all.CPUNanos).Seconds() / res.FlowSeconds
		}
		if all.Started > 0 && (mode == modePoll || mode == modeLongPoll) {
			res.StatusRequestsPerFlow = float64(all.StatusRequests) / float64(all.Started)
		}
		if err != nil {
			lg.Printf("%s: %v", mode, err)
			res.Notes = append(res.Notes, err.Error())
		}
	}

	lg.Printf("%s: closing", mode)
	closeAll()
	res.BenchCPUPercent = 100 * (cpuTime() - cpu0).Seconds() / time.Since(wall0).Seconds()
	for _, n := range res.ErrorKinds {
		res.Errors += n
	}
	if hubOK {
		b, i, a := before.sum(), idle.sum(), after.sum()
		res.Hub.Available = true
		res.Hub.RSSBefore, res.Hub.RSSIdle, res.Hub.RSSAfter = b.RSS, i.RSS, a.RSS
		res.Hub.HeapBefore, res.Hub.HeapIdle = b.HeapInuse, i.HeapInuse
		res.Hub.StackBefore, res.Hub.StackIdle = b.StackInuse, i.StackInuse
		res.Hub.GoroutinesBefore, res.Hub.GoroutinesIdle, res.Hub.GoroutinesAfter = b.Goroutines, i.Goroutines, a.Goroutines
		res.Hub.SocketsIdle = i.Sockets
		res.Hub.SlowDropped = a.Slow - b.Slow
		if n := float64(res.DesktopsOpen); n > 0 {
			res.Hub.BytesPerDesktop = (i.RSS - b.RSS) / n
			res.Hub.HeapBytesPerDesktop = (i.HeapInuse - b.HeapInuse) / n
			res.Hub.StackBytesPerDesktop = (i.StackInuse - b.StackInuse) / n
			res.Hub.GoroutinesPerDesktop = (i.Goroutines - b.Goroutines) / n
		}
		for k, u := range cfg.baseURLs {
			res.HubPerNode = append(res.HubPerNode, NodeStats{URL: u,
				RSSBefore: before[k].RSS, RSSIdle: idle[k].RSS, RSSAfter: after[k].RSS,
				GoroutinesBefore: before[k].Goroutines, GoroutinesIdle: idle[k].Goroutines, GoroutinesAfter: after[k].Goroutines,
				SocketsIdle: idle[k].Sockets, CPUIdlePercent: cpuIdle[k], CPUFlowsPercent: cpuFlows[k]})
		}
	}
	res.Incomplete = ctx.Err() != nil || res.NotStarted > 0 || res.Cancelled > 0 || res.DesktopsOpen+sumPrefix(res.ErrorKinds, "idle_open:") < cfg.desktops
	res.Notes = append(res.Notes, hints(res)...)
	return res, nil
}

func cpuPercent(a, b hubMetrics) float64 {
	wall := b.At.Sub(a.At).Seconds()
	if wall <= 0 {
		return 0
	}
	return 100 * (b.CPU - a.CPU) / wall
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func mergeCounts(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

func sumPrefix(m map[string]int, prefix string) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// hints explain the errors a misconfigured hub causes.
func hints(r Result) []string {
	var out []string
	has := func(sub string) bool {
		for k := range r.ErrorKinds {
			if strings.Contains(k, sub) {
				return true
			}
		}
		return false
	}
	if has("429") {
		out = append(out, "rate-limited: start the hub with LOGINHUB_TICKET_RATE=0 LOGINHUB_LOGIN_RATE=0 LOGINHUB_CALL_RATE=0")
	}
	if has("ws_dial:403") {
		out = append(out, "WebSocket refused (Origin): the hub allows its public URL's origin; pass --origin")
	}
	if has("expired") {
		out = append(out, "tickets expired during the run: start the hub with LOGINHUB_QR_TTL=10m")
	}
	if has("socket_limit") || has("too_many_files") {
		out = append(out, "out of sockets/files: use more --procs (or the hub is at its own file limit)")
	}
	if has("no_ephemeral_port") {
		out = append(out, "out of ephemeral ports: use more --sources")
	}
	if has("refused") || has(":reset") || has(":eof") || has(":timeout") {
		out = append(out, "connections refused, reset or timed out: the hub may be at its file limit (accept: too many open files) or overloaded")
	}
	return out
}

// runningBurst is a --password-burst under way beside the flows.
type runningBurst struct {
	done chan struct{} // closed when it is over
	rep  burstReport
	mem  burstMemory
}

// startBurst fires b's burst at at, reading the hubs' RSS from then until
// a second after its last answer (when hubOK); with no b it is over at
// once.
func startBurst(ctx context.Context, cfg config, b *burster, hubOK bool, at time.Time, lg *logger) *runningBurst {
	rb := &runningBurst{done: make(chan struct{})}
	if b == nil {
		close(rb.done)
		return rb
	}
	go func() {
		defer close(rb.done)
		stop, sampled := make(chan struct{}), make(chan struct{})
		started := func() {
			lg.Printf("sending %d password logins at once", b.plan.n)
			if !hubOK {
				close(sampled)
				return
			}
			go func() {
				defer close(sampled)
				rb.mem = cfg.probe.peakRSS(ctx, stop)
			}()
		}
		rb.rep = b.fire(ctx, at, started)
		close(stop)
		if rb.rep.start.IsZero() { // never sent: ctx ended first
			return
		}
		<-sampled
	}()
	return rb
}

// stats summarizes the burst, splitting the flows' confirm→desktop by
// whether their confirm was sent during it; flowsStart is when the flows
// began.
func (rb *runningBurst) stats(p burstPlan, flows flowReport, flowsStart time.Time) *BurstStats {
	r := rb.rep
	st := &BurstStats{Logins: p.n, Users: p.users, Wrong: p.wrong, Answers: r.answers,
		OK: r.answers["200"], Latency: summarize(r.all), OKLatency: summarize(r.ok),
		RSSBefore: rb.mem.first, PeakRSS: rb.mem.peak, PeakHeapGoal: rb.mem.peakGoal, RSSReads: rb.mem.reads}
	for k, n := range r.answers {
		if strings.HasPrefix(k, "503") {
			st.Busy += n
		}
	}
	if r.start.IsZero() {
		st.ConfirmOutside = summarize(flows.Confirm)
		return st
	}
	st.StartSeconds = r.start.Sub(flowsStart).Seconds()
	st.Seconds = r.end.Sub(r.start).Seconds()
	in, out := splitByWindow(flows.Confirm, flows.ConfirmAt, r.start, r.end)
	st.ConfirmDuring, st.ConfirmOutside = summarize(in), summarize(out)
	return st
}
