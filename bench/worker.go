package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// worker is one process's share of a mode's run: a local one, or a child
// process driven over pipes. Calls come in this order: openIdle, runFlows
// (skipped when the run stops early), close (always).
type worker interface {
	openIdle(ctx context.Context) (idleReport, error)
	runFlows(ctx context.Context) (flowReport, error)
	close() closeReport
}

// idleReport is how phase 1 went in one process.
type idleReport struct {
	Opened int            `json:"opened"`
	Errors map[string]int `json:"errors,omitempty"`
}

// flowReport is how phase 2 went in one process. Latencies are raw
// samples in nanoseconds.
type flowReport struct {
	Flows          int            `json:"flows"`
	Started        int            `json:"started"`
	OK             int            `json:"ok"`
	Cancelled      int            `json:"cancelled"` // cut short by --duration or a signal
	Errors         map[string]int `json:"errors,omitempty"`
	Open           []int64        `json:"open_ns"`
	Scanned        []int64        `json:"scanned_ns"`
	Confirm        []int64        `json:"confirm_ns"`
	ConfirmAt      []int64        `json:"confirm_at_unix_ns"` // when each Confirm's confirm was sent
	ConfirmArrived []int64        `json:"confirm_arrived_ns"` // to the kernel's receive time on the desktop's socket (push only)
	Redeem         []int64        `json:"redeem_ns"`
	Create         histogram      `json:"create"`          // --mode create
	StatusRequests int64          `json:"status_requests"` // by the flows' desktops
	IdleRequests   int64          `json:"idle_requests"`   // by the idle desktops during the flows
	CPUNanos       int64          `json:"cpu_ns"`          // this process's CPU time while running them
}

// closeReport is what happened to the idle desktops while they waited.
type closeReport struct {
	IdleErrors  map[string]int `json:"idle_errors,omitempty"`
	PeakSockets int64          `json:"peak_sockets"`
}

// phone is a logged-in sandbox phone user.
type phone struct {
	name  string
	token string
}

// localWorker runs desktops and flows in this process.
type localWorker struct {
	cfg    config
	mode   string
	lg     *logger
	reqs   atomic.Int64
	net    *netenv
	phones []phone

	life    context.Context
	endLife context.CancelFunc
	wg      sync.WaitGroup // watching goroutines

	idleEnv  desktopEnv
	flowEnv  desktopEnv
	idleReqs atomic.Int64
	flowReqs atomic.Int64

	mu         sync.Mutex
	idle       []*desktop
	idleErrors map[string]int
}

func newLocalWorker(cfg config, mode string, lg *logger) *localWorker {
	w := &localWorker{cfg: cfg, mode: mode, lg: lg, idleErrors: map[string]int{}}
	w.net = newNetenv(cfg, &w.reqs)
	w.life, w.endLife = context.WithCancel(context.Background())
	w.idleEnv = desktopEnv{cfg: cfg, mode: mode, life: w.life, requests: &w.idleReqs, wg: &w.wg}
	w.flowEnv = desktopEnv{cfg: cfg, mode: mode, life: w.life, requests: &w.flowReqs, wg: &w.wg}
	return w
}

// source is the i-th desktop's source address.
func (w *localWorker) source(i int) *source { return w.net.sources[i%len(w.net.sources)] }

// loginPhones logs the sandbox phone users in: wx.login on the phone, then
// /v1/wx/login with its code, both on phone i's node (the sandbox's codes
// are known only to the node that issued them; sessions live in Redis).
func (w *localWorker) loginPhones(ctx context.Context) error {
	n := w.cfg.phones
	w.phones = make([]phone, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name := fmt.Sprintf("bench-c%d-p%d", w.cfg.childIndex, i)
			token, err := w.source(i).sandboxLogin(ctx, w.cfg.baseURLs[w.cfg.phoneNode(i)], name)
			errs[i] = err
			w.phones[i] = phone{name: name, token: token}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("logging in phone users: %w", err)
		}
	}
	return nil
}

// openIdle logs the phones in and opens the idle desktops at --open-rate,
// openConcurrency at a time.
func (w *localWorker) openIdle(ctx context.Context) (idleReport, error) {
	if w.cfg.flows > 0 && w.mode != modeCreate {
		if err := w.loginPhones(ctx); err != nil {
			return idleReport{}, err
		}
	}
	rep := idleReport{Errors: map[string]int{}}
	n := w.cfg.desktops
	if n == 0 {
		return rep, nil
	}
	notify := w.countIdleNotice
	interval := time.Duration(float64(time.Second) / w.cfg.openRate)
	var mu sync.Mutex
	paced(ctx, n, interval, openConcurrency, func(i int) {
		dn := notify
		var notices chan notice
		if w.cfg.confirmWaiting {
			// A flow will take this desktop's notices: they wait here
			// (close counts those of desktops no flow took).
			notices = make(chan notice, 8)
			dn = func(nt notice) {
				select {
				case notices <- nt:
				default:
					notify(nt)
				}
			}
		}
		d, err := w.idleEnv.openDesktop(ctx, w.source(i), w.cfg.desktopNode(i), dn)
		if d != nil {
			d.notices = notices
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.Errors["idle_open:"+errKind(err)]++
			return
		}
		rep.Opened++
		w.mu.Lock()
		w.idle = append(w.idle, d)
		w.mu.Unlock()
	})
	// The creates' pooled connections are not part of a waiting desktop
	// (short polling makes its own again).
	w.net.closeIdle(false)
	return rep, nil
}

// countIdleNotice counts what an idle desktop should not hear: an error,
// or another state than pending.
func (w *localWorker) countIdleNotice(nt notice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case nt.err != "":
		w.idleErrors["idle:"+nt.err]++
	case nt.state != "pending":
		w.idleErrors["idle:state_"+nt.state]++
	}
}

// flowResult is one flow's outcome.
type flowResult struct {
	err                            string
	cancelled                      bool // the run ended under it
	open, scanned, confirm, redeem time.Duration
	confirmArrived                 time.Duration // 0 when unknown
	confirmAt                      time.Time     // when the confirm was sent
}

// runFlows starts --flows logins at --rate, at most --concurrency at once.
func (w *localWorker) runFlows(ctx context.Context) (rep flowReport, err error) {
	cpu0 := selfCPU()
	defer func() { rep.CPUNanos = int64(selfCPU() - cpu0) }()
	if w.mode == modeCreate {
		return w.runCreates(ctx)
	}
	n := w.cfg.flows
	rep = flowReport{Flows: n, Errors: map[string]int{}}
	if n == 0 {
		return rep, nil
	}
	idle0, status0 := w.idleReqs.Load(), w.flowReqs.Load()
	interval := time.Duration(float64(time.Second) / w.cfg.rate)
	results := make(chan flowResult, 256)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for r := range results {
			if r.cancelled {
				rep.Cancelled++
				continue
			}
			if r.err != "" {
				rep.Errors[r.err]++
				continue
			}
			rep.OK++
			if r.open > 0 { // not with --confirm-waiting: opened before
				rep.Open = append(rep.Open, int64(r.open))
			}
			rep.Scanned = append(rep.Scanned, int64(r.scanned))
			rep.Confirm = append(rep.Confirm, int64(r.confirm))
			rep.ConfirmAt = append(rep.ConfirmAt, r.confirmAt.UnixNano())
			if r.confirmArrived > 0 {
				rep.ConfirmArrived = append(rep.ConfirmArrived, int64(r.confirmArrived))
			}
			rep.Redeem = append(rep.Redeem, int64(r.redeem))
		}
	}()
	rep.Started = paced(ctx, n, interval, w.cfg.concurrency, func(i int) { results <- w.flow(ctx, i) })
	close(results)
	<-collected
	rep.StatusRequests = w.flowReqs.Load() - status0
	rep.IdleRequests = w.idleReqs.Load() - idle0
	return rep, nil
}

// flow is one login: the desktop opens and watches, the phone scans and
// confirms, the desktop notices and redeems. The desktop talks to node
// i mod n, the phone to the next node. With --confirm-waiting the desktop
// is the i-th waiting one, opened before the flows.
func (w *localWorker) flow(runCtx context.Context, i int) (res flowResult) {
	defer func() { res.cancelled = res.err != "" && runCtx.Err() != nil }()
	ctx, cancel := context.WithTimeout(runCtx, w.cfg.flowTimeout())
	defer cancel()
	src := w.source(i)
	ph := w.phones[i%len(w.phones)]
	phoneBase := w.cfg.baseURLs[w.cfg.phoneNode(i)]
	var d *desktop
	var notices chan notice
	if w.cfg.confirmWaiting {
		w.mu.Lock()
		if i < len(w.idle) {
			d = w.idle[i]
		}
		w.mu.Unlock()
		if d == nil {
			res.err = "no_waiting_desktop" // fewer opened than asked
			return res
		}
		d.claimed.Store(true)
		notices = d.notices
	} else {
		notices = make(chan notice, 16)
		notify := func(n notice) {
			select {
			case notices <- n:
			default: // a desktop sees at most 4 versions and an error
			}
		}
		t0 := time.Now()
		var err error
		d, err = w.flowEnv.openDesktop(ctx, src, w.cfg.desktopNode(i), notify)
		if err != nil {
			res.err = errKind(err)
			return res
		}
		defer d.close()
		res.open = time.Since(t0)
	}

	tScan := time.Now()
	if err := src.call(ctx, "scan", "POST", phoneBase+"/v1/qr/scan", ph.token,
		map[string]string{"ticket": d.t.Ticket}, nil, http.StatusOK); err != nil {
		res.err = errKind(err)
		return res
	}
	tConfirm := time.Now()
	if err := src.call(ctx, "confirm", "POST", phoneBase+"/v1/qr/tickets/"+d.t.ID+"/confirm", ph.token,
		nil, nil, http.StatusOK); err != nil {
		res.err = errKind(err)
		return res
	}
	scannedAt, confirmed, failed := awaitConfirmed(ctx, notices)
	if failed != "" {
		res.err = failed
		return res
	}
	res.scanned = scannedAt.Sub(tScan)
	res.confirm = confirmed.at.Sub(tConfirm)
	res.confirmAt = tConfirm
	if !confirmed.arrived.IsZero() {
		res.confirmArrived = confirmed.arrived.Sub(tConfirm.Round(0))
	}
	tRedeem := time.Now()
	if err := src.call(ctx, "redeem", "POST", d.base+"/v1/qr/tickets/"+d.t.ID+"/redeem", d.t.WatchSecret,
		nil, nil, http.StatusOK); err != nil {
		res.err = errKind(err)
		return res
	}
	res.redeem = time.Since(tRedeem)
	return res
}

// awaitConfirmed waits for a desktop's notices up to "confirmed": when it
// learned of the scan, and the confirmed notice; or the kind of error.
func awaitConfirmed(ctx context.Context, notices <-chan notice) (scannedAt time.Time, confirmed notice, failed string) {
	for {
		select {
		case <-ctx.Done():
			if scannedAt.IsZero() {
				return scannedAt, confirmed, "notice:scanned_" + netKind(ctx.Err())
			}
			return scannedAt, confirmed, "notice:confirmed_" + netKind(ctx.Err())
		case n := <-notices:
			switch {
			case n.err != "":
				return scannedAt, confirmed, n.err
			case n.version >= 2 && scannedAt.IsZero():
				scannedAt = n.at // polling may see confirmed first: it learned of the scan then
			}
			switch n.state {
			case "confirmed":
				return scannedAt, n, "" // n.at: when the desktop read it, not when this goroutine woke
			case "pending", "scanned":
			default:
				return scannedAt, confirmed, "notice:state_" + n.state
			}
		}
	}
}

// close closes every idle desktop and waits for every goroutine.
func (w *localWorker) close() closeReport {
	w.mu.Lock()
	idle := w.idle
	w.idle = nil
	w.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, d := range idle {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.close()
		})
	}
	wg.Wait()
	w.endLife()
	w.wg.Wait()
	w.net.closeIdle(true)
	// What the desktops no flow took heard while they waited (their
	// readers have ended).
	for _, d := range idle {
		if d.notices != nil && !d.claimed.Load() {
			for len(d.notices) > 0 {
				w.countIdleNotice(<-d.notices)
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return closeReport{IdleErrors: w.idleErrors, PeakSockets: w.net.peak.Load()}
}

// paced starts run(i) for i in [0,n), one every interval and at most
// limit at once, until ctx ends; it returns how many it started, once they
// have all returned. The runs share up to limit goroutines, started as
// needed: a goroutine per run would grow a fresh stack for every login,
// CPU that the tool takes from the hub it measures.
func paced(ctx context.Context, n int, interval time.Duration, limit int, run func(i int)) (started int) {
	var wg sync.WaitGroup
	jobs := make(chan int)
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	workers := 0
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return started
			case <-timer.C:
			}
		}
		select {
		case jobs <- i: // an idle goroutine took it
		default:
			if workers < limit {
				workers++
				wg.Go(func() {
					run(i)
					for j := range jobs {
						run(j)
					}
				})
				break
			}
			select {
			case <-ctx.Done():
				return started
			case jobs <- i:
			}
		}
		started++
	}
	return started
}
