// Package bench is loginhub's load tool: `loginhub bench` drives a running
// hub on this machine (or several nodes sharing one Redis) with waiting
// desktops and full scan logins, and reports latency, throughput, errors
// and what the hub spent (RSS, goroutines, CPU from its /metrics).
// `loginhub bench --help` says how to start the hub for it and what each
// flag does; docs/BENCHMARKS.md has the runs behind the published figures.
// runMode describes a run, and Run how it spreads over processes and
// loopback addresses.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Modes.
const (
	modePush     = "push"
	modePoll     = "poll"
	modeLongPoll = "longpoll"
	modeCreate   = "create" // ticket creation alone
)

// Limits of one process and of one run.
const (
	maxSocketsPerProcess = 15000 // below the 20 000 files a process may open here
	desktopsPerProcess   = 12000 // automatic --procs puts at most this many idle desktops in one process
	openConcurrency      = 128   // idle desktops being opened at once (per process)
	maxDesktops          = 200000
	maxFlows             = 200000 // raw latency samples are kept
	maxCreates           = 10000000
	defaultCreates       = 100000 // --flows of --mode create when not given
	maxNodes             = 64
	maxProcs             = 64
	socketSlack          = openConcurrency + 128 // pooled HTTP conns, phones, metrics
	untilDurationGrace   = 15 * time.Second      // --mode create --flows 0: to gather results after --duration
)

// config is the parsed command line.
type config struct {
	probe       *probe   // reads the nodes' /healthz and /metrics (the parent process only)
	baseURLs    []string // scheme://host:port[/path], no trailing slash; one per hub node
	metricsURLs []string // --metrics: each node's internal listener, in --url order; nil: no hub figures
	wsURLs      []string // ws(s)://host:port[/path]/v1/ws, same order
	wsTargets   []wsTarget
	origin      string // WebSocket Origin; "" = the hub's public URL's (from qr_url)
	ipv6        bool
	desktops    int
	flows       int
	rate        float64
	concurrency int
	// confirmWaiting: flow i confirms the ticket of waiting desktop i
	// instead of opening a desktop of its own.
	confirmWaiting bool
	sources        int
	phones         int
	modes          []string
	pollInterval   time.Duration
	longPollWait   int // seconds
	duration       time.Duration
	procs          int // 0 = automatic
	openRate       float64
	settle         time.Duration // longest wait for the hub to settle; 0 = read at once
	json           bool
	cpuProfile     string // write this process's CPU profile here (children: .child<i> appended)
	gcPercent      int    // the load tool's own GOGC; -1 = off (collect only at memoryLimit)
	memoryLimitMiB int    // the load tool's soft heap limit per process (GOMEMLIMIT), MiB
	maxProcs       int    // the load tool's GOMAXPROCS per process; 0 = the runtime's default

	// --password-burst: this many password logins sent at once during
	// the flows, burstAt after they start (see burster), by burstUsers
	// users, burstWrongPct % of them with a wrong password.
	passwordBurst int
	burstUsers    int
	burstWrongPct float64
	burstAt       time.Duration // <0: a third of the flows' nominal length (--flows / --rate)

	// untilDuration: --mode create with --flows 0 creates until endAt
	// (the run's start + --duration) and is complete then.
	untilDuration bool
	endAt         time.Time

	// Set by the parent on its children.
	child        bool
	childIndex   int
	sourceOffset int
}

// Run runs `loginhub bench` with args (the words after "bench"). The
// result goes to stdout (a table, or JSON lines with --json); progress and
// problems to stderr. It returns an error when the run could not be done
// or was cut short (--duration, a signal); a completed run whose flows
// failed is reported, not returned as an error.
//
// Client sockets are spread over --sources loopback addresses
// (127.0.0.10, 127.0.0.11, ...) so ephemeral ports do not run out. Each
// desktop uses one address for everything it does (create, watch, status,
// redeem), so the hub's strict IP binding holds. A process opens at most
// 15 000 sockets; bigger runs are split over --procs child processes of the
// same executable (`<exe> bench --child ...`) that talk to the parent over
// stdin/stdout (JSON lines) and are merged into one result.
//
// --url takes one hub or a comma-separated list of nodes sharing one Redis.
// With n nodes, idle desktop i and flow i's desktop (create, watch, status,
// redeem) use node i mod n, and flow i's phone (its login up front, scan,
// confirm) uses node (i+1) mod n: with more than one node every
// confirmation crosses nodes through Redis. Hub figures are summed over
// the nodes, and also shown per node.
//
// --create-only (= --mode create) measures ticket creation alone:
// --concurrency keep-alive connections each POST /v1/qr/tickets (the JSON
// answer, no image) back to back, --flows requests in all, or until
// --duration with --flows 0 (default 100 000); it reports creations per
// second, latency and errors. Its connections speak HTTP/1.1 themselves
// (no net/http client), so that the load generator, which shares the
// CPUs with the hub, spends little per request.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hard := cfg.duration
	if cfg.untilDuration {
		// The creates stop at --duration; then the results are gathered.
		cfg.endAt = time.Now().Add(cfg.duration)
		hard += untilDurationGrace
	}
	ctx, cancel := context.WithTimeout(ctx, hard)
	defer cancel()
	// Process-wide: restored on return, for callers that run bench in
	// process (its tests).
	defer debug.SetGCPercent(debug.SetGCPercent(cfg.gcPercent))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(cfg.memoryLimitMiB) << 20))
	if cfg.maxProcs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.maxProcs))
	}
	if cfg.cpuProfile != "" {
		stopProfile, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}

	if cfg.child {
		return runChild(ctx, cfg, os.Stdin, stdout, stderr)
	}
	cfg.probe = newProbe(cfg.metricsURLs)
	defer cfg.probe.close()
	lg := &logger{w: stderr, prefix: "bench: "}
	if err := checkHub(ctx, cfg); err != nil {
		return err
	}
	var results []Result
	var runErr error
	for _, mode := range cfg.modes {
		res, err := runMode(ctx, cfg, mode, lg)
		results = append(results, res)
		if err != nil {
			runErr = fmt.Errorf("%s: %w", mode, err)
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		writeTable(stdout, results)
	}
	if runErr != nil {
		return runErr
	}
	if ctx.Err() != nil || len(results) < len(cfg.modes) || results[len(results)-1].Incomplete {
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return fmt.Errorf("stopped at --duration %s before the run was complete", cfg.duration)
		}
		return errors.New("interrupted before the run was complete")
	}
	return nil
}

func newFlagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: loginhub bench [flags]

Drives a running loginhub on this machine (loopback only) with waiting
desktops and scan logins, and prints latency, throughput, errors and the
hub's RSS, goroutines and CPU. Start the hub with
  LOGINHUB_TICKET_RATE=0 LOGINHUB_LOGIN_RATE=0 LOGINHUB_CALL_RATE=0 LOGINHUB_QR_TTL=10m
(sandbox mode; LOGINHUB_IP_BINDING may stay strict).

The hub's figures come from its /metrics, which it serves only on its
internal listener: start it with LOGINHUB_INTERNAL_ADDR=127.0.0.1:9090 and
pass --metrics http://127.0.0.1:9090.

Several nodes on one Redis: --url http://127.0.0.1:8081,http://127.0.0.1:8082
puts each flow's phone on another node than its desktop (with --metrics
listing their internal listeners in the same order).
Ticket creation alone: --create-only --concurrency 64 [--flows N | --flows 0 --duration 30s].

flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and validates args.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := newFlagSet(stderr)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "hub base URL, or a comma-separated list of nodes sharing one Redis; each must be a loopback address (127.0.0.0/8, ::1, localhost)")
	rawMetrics := fs.String("metrics", "", "base URL of the hub's internal listener (LOGINHUB_INTERNAL_ADDR), where it serves /metrics; with several --url nodes, theirs in the same order, comma-separated; loopback only (default: none, and no hub figures)")
	fs.StringVar(&cfg.origin, "origin", "", "Origin header of the WebSockets (default: the origin of the hub's public URL, from the qr_url of each new ticket)")
	createOnly := fs.Bool("create-only", false, "only create tickets, as fast as --concurrency keep-alive connections allow (= --mode create)")
	fs.IntVar(&cfg.desktops, "desktops", 1000, "idle desktops held waiting during the run")
	fs.IntVar(&cfg.flows, "flows", 1000, "full login flows (create, watch, scan, confirm, redeem); with --mode create: ticket creations, 100000 unless set (0 = until --duration)")
	fs.Float64Var(&cfg.rate, "rate", 200, "flows started per second")
	fs.BoolVar(&cfg.confirmWaiting, "confirm-waiting", false, "each flow scans, confirms and redeems the ticket of one of the waiting desktops (opened before the flows, and left open) instead of opening a desktop of its own: confirmations on the open sockets without page loads during the flows; needs --flows <= --desktops")
	fs.IntVar(&cfg.concurrency, "concurrency", 500, "flows in flight at most; with --mode create: keep-alive connections creating back to back")
	fs.IntVar(&cfg.sources, "sources", 8, "loopback source addresses for client sockets, from 127.0.0.10 up (0 = let the kernel pick)")
	fs.IntVar(&cfg.phones, "phones", 20, "sandbox phone users, logged in up front and reused")
	modes := fs.String("mode", modePush, "push (WebSocket), poll (short polling) or longpoll; a comma list runs each in turn; or create alone (ticket creation only)")
	fs.DurationVar(&cfg.pollInterval, "poll-interval", 2*time.Second, "status polling interval of --mode poll")
	poll := fs.Duration("poll", 0, "compare in one run: push, short polling every `INTERVAL`, and long-polling (= --mode push,poll,longpoll --poll-interval INTERVAL)")
	fs.IntVar(&cfg.longPollWait, "longpoll-wait", 25, "wait= seconds of --mode longpoll requests (1-30)")
	fs.DurationVar(&cfg.duration, "duration", 2*time.Minute, "hard bound on the whole run: everything stops then")
	fs.IntVar(&cfg.procs, "procs", 0, "processes to spread the desktops and flows over (0 = enough for 12000 desktops each)")
	fs.Float64Var(&cfg.openRate, "open-rate", 2000, "idle desktops opened per second")
	fs.DurationVar(&cfg.settle, "settle", 10*time.Second, "after opening the idle desktops, wait at most this long for the hub's RSS to settle (0 = measure at once, no idle CPU)")
	fs.BoolVar(&cfg.json, "json", false, "print the result as JSON, one object per mode")
	cfg.gcPercent = -1
	fs.Func("gogc", "the load tool's own garbage-collector target (GOGC, 50-10000, or off): each of its GC cycles delays the events it is timing, so by default it collects only when its heap reaches --memory-limit (default off)", func(v string) error {
		if v == "off" {
			cfg.gcPercent = -1
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 50 || n > 10000 {
			return errors.New("--gogc wants 50..10000 or off")
		}
		cfg.gcPercent = n
		return nil
	})
	fs.IntVar(&cfg.memoryLimitMiB, "memory-limit", 512, "the load tool's soft heap limit per process in MiB (GOMEMLIMIT): with --gogc off its garbage is collected only when the heap reaches it, so a run of a few tens of thousands of logins finishes without a collection (64-65536)")
	maxProcs := fs.Int("gomaxprocs", 1, "OS threads running Go code in each load-tool process (GOMAXPROCS; 0 = all CPUs). 1 suits flows: the tool runs several processes, and each one's idle scheduler threads spin on the cores the hub needs. --mode create uses all CPUs unless this is set")
	fs.IntVar(&cfg.passwordBurst, "password-burst", 0, "send this many POST /v1/password/login at once during the flows (each on a connection opened before), and report their answers and latency, the hub's peak RSS (its /metrics read every 100 ms), and confirm→desktop during the burst and outside it; users are prepared first (sandbox wx.login, username, password). With --mode push, poll or longpoll alone")
	fs.IntVar(&cfg.burstUsers, "password-users", 100, "users the --password-burst logins are spread over (each prepared with one password hash)")
	fs.Float64Var(&cfg.burstWrongPct, "password-wrong", 10, "percent of the --password-burst logins sent with a wrong password; the hub locks a user after 5 failures and an address after 30, so these spread over --password-users and --sources")
	cfg.burstAt = -1
	fs.Func("password-burst-at", "when the --password-burst is sent, after the flows start, e.g. 5s (default: a third of --flows / --rate)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("--password-burst-at wants a duration of 0 or more, e.g. 5s")
		}
		cfg.burstAt = d
		return nil
	})
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to `FILE` (child i of --procs writes FILE.child<i>): to see what the generator costs next to the hub")
	fs.BoolVar(&cfg.child, "child", false, "internal: run as a child process of a --procs run")
	fs.IntVar(&cfg.childIndex, "child-index", 0, "internal: which child")
	fs.IntVar(&cfg.sourceOffset, "source-offset", 0, "internal: index of this process's first source address")
	fs.BoolVar(&cfg.untilDuration, "until-duration", false, "internal: --mode create until --duration")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("bench: unexpected argument %q (flags only)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	for raw := range strings.SplitSeq(*rawURL, ",") {
		u, err := checkLoopbackURL("url", strings.TrimSpace(raw))
		if err != nil {
			return config{}, err
		}
		base := strings.TrimRight(u.String(), "/")
		if slices.Contains(cfg.baseURLs, base) {
			return config{}, fmt.Errorf("bench: --url lists %s twice", base)
		}
		cfg.baseURLs = append(cfg.baseURLs, base)
		ws := *u
		ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
		cfg.wsURLs = append(cfg.wsURLs, strings.TrimRight(ws.String(), "/")+"/v1/ws")
		t, err := newWSTarget(cfg.wsURLs[len(cfg.wsURLs)-1])
		if err != nil {
			return config{}, fmt.Errorf("bench: --url %s: %w", raw, err)
		}
		cfg.wsTargets = append(cfg.wsTargets, t)
		if strings.Contains(u.Hostname(), ":") {
			cfg.ipv6 = true
		}
	}
	if len(cfg.baseURLs) > maxNodes {
		return config{}, fmt.Errorf("bench: --url lists %d nodes, at most %d", len(cfg.baseURLs), maxNodes)
	}
	if *rawMetrics != "" {
		for raw := range strings.SplitSeq(*rawMetrics, ",") {
			u, err := checkLoopbackURL("metrics", strings.TrimSpace(raw))
			if err != nil {
				return config{}, err
			}
			cfg.metricsURLs = append(cfg.metricsURLs, strings.TrimRight(u.String(), "/"))
		}
		if len(cfg.metricsURLs) != len(cfg.baseURLs) {
			return config{}, fmt.Errorf("bench: --metrics lists %d URLs for %d --url nodes: want one per node, in the same order", len(cfg.metricsURLs), len(cfg.baseURLs))
		}
	}

	if *createOnly {
		if set["mode"] && *modes != modeCreate {
			return config{}, fmt.Errorf("bench: --create-only and --mode %s: pick one", *modes)
		}
		*modes = modeCreate
	}
	if *poll != 0 {
		cfg.pollInterval = *poll
		if !set["mode"] {
			*modes = modePush + "," + modePoll + "," + modeLongPoll
		}
	}
	for m := range strings.SplitSeq(*modes, ",") {
		m = strings.TrimSpace(m)
		switch m {
		case modePush, modePoll, modeLongPoll, modeCreate:
		default:
			return config{}, fmt.Errorf("bench: --mode %q: want push, poll, longpoll or create", m)
		}
		for _, seen := range cfg.modes {
			if seen == m {
				return config{}, fmt.Errorf("bench: --mode lists %s twice", m)
			}
		}
		cfg.modes = append(cfg.modes, m)
	}
	if slices.Contains(cfg.modes, modeCreate) {
		if len(cfg.modes) > 1 {
			return config{}, errors.New("bench: --mode create runs alone")
		}
		if set["desktops"] && cfg.desktops != 0 {
			return config{}, errors.New("bench: --mode create opens no desktops: drop --desktops")
		}
		if set["rate"] {
			return config{}, errors.New("bench: --mode create has no --rate: --concurrency connections create back to back")
		}
		cfg.desktops = 0
		if !set["flows"] {
			cfg.flows = defaultCreates
		}
		if !cfg.child {
			cfg.untilDuration = cfg.flows == 0
		}
	}
	if cfg.passwordBurst > 0 && (len(cfg.modes) > 1 || cfg.create()) {
		return config{}, errors.New("bench: --password-burst runs beside the flows of one --mode: push, poll or longpoll")
	}
	cfg.maxProcs = *maxProcs
	if cfg.create() && !set["gomaxprocs"] {
		cfg.maxProcs = 0 // creating flat out needs every core
	}
	if err := cfg.validate(set["procs"]); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// checkLoopbackURL parses a hub URL given with flag (--url, --metrics) and
// refuses anything not on this machine's loopback: bench is a load
// generator, not a weapon.
func checkLoopbackURL(flag, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bench: --%s: %w", flag, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bench: --%s %q: want http:// or https://", flag, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("bench: --%s %q: want only scheme://host:port[/path]", flag, raw)
	}
	host := u.Hostname()
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("bench: --%s host %q is not a loopback address; bench only drives a hub on this machine (127.0.0.0/8, ::1, localhost)", flag, host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if strings.Contains(host, "%") { // a zone: fe80::1%lo is not ::1
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks ranges and that no process needs more sockets than it may
// open; it fills in an automatic --procs.
func (c *config) validate(procsSet bool) error {
	bad := func(format string, a ...any) error { return fmt.Errorf("bench: "+format, a...) }
	switch {
	case c.desktops < 0 || c.desktops > maxDesktops:
		return bad("--desktops %d: want 0..%d", c.desktops, maxDesktops)
	case c.create() && (c.flows < 0 || c.flows > maxCreates):
		return bad("--flows %d: want 0..%d ticket creations (0 = until --duration)", c.flows, maxCreates)
	case !c.create() && (c.flows < 0 || c.flows > maxFlows):
		return bad("--flows %d: want 0..%d", c.flows, maxFlows)
	case c.desktops == 0 && c.flows == 0 && c.passwordBurst == 0 && !c.create():
		return bad("nothing to do: --desktops and --flows are both 0")
	case c.passwordBurst < 0 || c.passwordBurst > maxBurst:
		return bad("--password-burst %d: want 0..%d", c.passwordBurst, maxBurst)
	case c.passwordBurst > 0 && (c.burstUsers < 1 || c.burstUsers > maxBurstUsers):
		return bad("--password-users %d: want 1..%d", c.burstUsers, maxBurstUsers)
	case math.IsNaN(c.burstWrongPct) || c.burstWrongPct < 0 || c.burstWrongPct > 100:
		return bad("--password-wrong %g: want a percentage, 0..100", c.burstWrongPct)
	case c.burstAt > time.Hour:
		return bad("--password-burst-at %s: want at most 1h", c.burstAt)
	case c.confirmWaiting && c.create():
		return bad("--confirm-waiting confirms waiting desktops; --mode create has none")
	case c.confirmWaiting && c.flows > c.desktops:
		return bad("--confirm-waiting: --flows %d is more than the %d waiting desktops (each is confirmed once)", c.flows, c.desktops)
	case c.maxProcs < 0 || c.maxProcs > 256:
		return bad("--gomaxprocs %d: want 0..256 (0 = all CPUs)", c.maxProcs)
	case c.memoryLimitMiB < 64 || c.memoryLimitMiB > 65536:
		return bad("--memory-limit %d: want 64..65536 MiB", c.memoryLimitMiB)
	case math.IsNaN(c.rate) || c.rate <= 0 || c.rate > 100000:
		return bad("--rate %g: want more than 0 and at most 100000 flows per second", c.rate)
	case math.IsNaN(c.openRate) || c.openRate <= 0 || c.openRate > 100000:
		return bad("--open-rate %g: want more than 0 and at most 100000 per second", c.openRate)
	case c.concurrency < 1:
		return bad("--concurrency %d: want at least 1", c.concurrency)
	case c.sources < 0 || c.sources > 200:
		return bad("--sources %d: want 0..200", c.sources)
	case c.sources > 0 && c.ipv6:
		return bad("--sources binds 127.0.0.x addresses, which cannot reach an IPv6 hub; use --sources 0 or an IPv4 --url")
	case c.flows > 0 && !c.create() && (c.phones < 1 || c.phones > 1000):
		return bad("--phones %d: want 1..1000", c.phones)
	case c.pollInterval < 10*time.Millisecond || c.pollInterval > time.Minute:
		return bad("--poll-interval %s: want 10ms..1m", c.pollInterval)
	case c.longPollWait < 1 || c.longPollWait > 30:
		return bad("--longpoll-wait %d: want 1..30 seconds", c.longPollWait)
	case c.settle < 0 || c.settle > time.Minute:
		return bad("--settle %s: want 0..1m", c.settle)
	case c.duration <= 0 || c.duration > time.Hour:
		return bad("--duration %s: want more than 0 and at most 1h", c.duration)
	case c.procs < 0 || c.procs > maxProcs:
		return bad("--procs %d: want 0..%d", c.procs, maxProcs)
	case c.child && c.procs > 1:
		return bad("a child runs one process")
	case c.sourceOffset < 0 || c.sourceOffset+max(c.sources, 1) > maxSourceAddrs:
		return bad("source addresses run past 127.0.255.254")
	}
	if c.child {
		c.procs = 1
	}
	if c.procs == 0 {
		c.procs = max(1, ceilDiv(c.desktops, desktopsPerProcess))
		for c.procs < maxProcs && c.socketsPerProcess(c.procs) > maxSocketsPerProcess {
			c.procs++
		}
	}
	if c.passwordBurst > 0 {
		if err := c.burstPlan().check(); err != nil {
			return bad("%v", err)
		}
	}
	burstSources := 0
	if c.passwordBurst > 0 {
		burstSources = c.burstSources()
	}
	if c.sources > 0 && c.burstSourceOffset()+burstSources > maxSourceAddrs {
		return bad("--procs %d × --sources %d source addresses run past 127.0.255.254", c.procs, c.sources)
	}
	if n := c.socketsPerProcess(c.procs); n > maxSocketsPerProcess {
		need := c.procs
		for need < maxProcs && c.socketsPerProcess(need) > maxSocketsPerProcess {
			need++
		}
		hint := fmt.Sprintf("use --procs %d", need)
		if procsSet || c.child {
			hint = fmt.Sprintf("raise --procs to %d", need)
		}
		if c.socketsPerProcess(need) > maxSocketsPerProcess {
			hint = "lower --desktops or --concurrency"
		}
		return bad("each of %d process(es) would open about %d sockets, more than the %d one process may hold; %s",
			c.procs, n, maxSocketsPerProcess, hint)
	}
	if lim := fileLimit(); lim > 0 && uint64(c.socketsPerProcess(c.procs))+64 > lim {
		return bad("this process may open %d files but would need about %d sockets; use more --procs (bench raises no limits)",
			lim, c.socketsPerProcess(c.procs))
	}
	return nil
}

// socketsPerProcess is how many sockets the busiest of procs processes
// holds at most: one per idle desktop (a WebSocket, a held long-poll, or
// at most a pooled connection for short polling), two per flow in flight
// (the desktop's and an HTTP connection), plus pooled connections.
func (c *config) socketsPerProcess(procs int) int {
	if c.create() { // one keep-alive connection per worker
		return ceilDiv(c.concurrency, procs) + socketSlack
	}
	inflight := min(ceilDiv(c.concurrency, procs), ceilDiv(c.flows, procs))
	n := ceilDiv(c.desktops, procs) + 2*inflight + socketSlack
	if procs == 1 { // the burst's connections are in the one process too
		n += c.passwordBurst
	}
	return max(n, c.passwordBurst+socketSlack)
}

// burstSources is how many source addresses the burst's logins come from.
func (c *config) burstSources() int { return max(c.sources, 1) }

// burstSourceOffset is the index of the burst's first source address:
// after every worker process's.
func (c *config) burstSourceOffset() int { return c.sourceOffset + c.procs*c.sources }

// burstPlan is who sends which login of --password-burst.
func (c *config) burstPlan() burstPlan {
	n := c.passwordBurst
	return burstPlan{n: n, users: c.burstUsers, sources: c.burstSources(),
		wrong: int(math.Round(float64(n) * c.burstWrongPct / 100))}
}

// burstDelay is when the burst is sent, after the flows start.
func (c *config) burstDelay() time.Duration {
	if c.burstAt >= 0 {
		return c.burstAt
	}
	return time.Duration(float64(c.flows) / c.rate / 3 * float64(time.Second))
}

// create reports whether this is a --mode create run.
func (c *config) create() bool { return len(c.modes) == 1 && c.modes[0] == modeCreate }

// nodes is how many hub nodes the run spreads over.
func (c *config) nodes() int { return len(c.baseURLs) }

// desktopNode is the node of idle desktop i and of flow i's desktop.
func (c *config) desktopNode(i int) int { return i % len(c.baseURLs) }

// phoneNode is the node of flow i's phone (and of phone i's login): the
// next one, so that with several nodes every scan and confirm reaches
// another node than the desktop's.
func (c *config) phoneNode(i int) int { return (i + 1) % len(c.baseURLs) }

func ceilDiv(a, b int) int {
	if b <= 0 {
		return a
	}
	return (a + b - 1) / b
}

// share is child i's part of total split over n.
func share(total, i, n int) int {
	s := total / n
	if i < total%n {
		s++
	}
	return s
}

// flowTimeout bounds one flow.
func (c *config) flowTimeout() time.Duration {
	return 30*time.Second + 2*c.pollInterval
}

// logger writes progress lines to stderr.
type logger struct {
	w      io.Writer
	prefix string
}

func (l *logger) Printf(format string, a ...any) {
	fmt.Fprintf(l.w, l.prefix+format+"\n", a...)
}

// startCPUProfile profiles this process's CPU into path until the
// returned func is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
