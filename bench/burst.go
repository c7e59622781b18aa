package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Limits of --password-burst.
const (
	maxBurst        = 10000
	maxBurstUsers   = 10000
	burstTimeout    = 30 * time.Second       // a password login's dial, and the login from its sending to its answer
	burstRSSEvery   = 100 * time.Millisecond // between reads of the hub's RSS during a burst
	burstRSSTail    = time.Second            // reads go on this long after the last answer
	burstDialAhead  = 2 * time.Second        // the burst's connections are opened this long before it
	prepConcurrency = 8                      // users being prepared at once
)

// burstPlan says who sends password login i of a burst of n: wrong of
// the n carry a wrong password, spread evenly over the burst; the k-th
// wrong one (and the k-th right one) is user k mod users's, from source
// address k mod sources, so that failures spread evenly over users and
// addresses too.
type burstPlan struct {
	n, users, sources, wrong int
}

func (p burstPlan) user(i int) int   { return p.rank(i) % p.users }
func (p burstPlan) source(i int) int { return p.rank(i) % p.sources }

// isWrong reports whether login i sends a wrong password.
func (p burstPlan) isWrong(i int) bool {
	return (i+1)*p.wrong/p.n != i*p.wrong/p.n
}

// rank is how many logins of i's kind (wrong or right) come before it.
func (p burstPlan) rank(i int) int {
	wrongBefore := i * p.wrong / p.n
	if p.isWrong(i) {
		return wrongBefore
	}
	return i - wrongBefore
}

// maxFailures is the most wrong passwords that one user and one source
// address send in the burst.
func (p burstPlan) maxFailures() (perUser, perSource int) {
	users, sources := make([]int, p.users), make([]int, p.sources)
	for i := range p.n {
		if p.isWrong(i) {
			users[p.user(i)]++
			sources[p.source(i)]++
		}
	}
	for _, n := range users {
		perUser = max(perUser, n)
	}
	for _, n := range sources {
		perSource = max(perSource, n)
	}
	return perUser, perSource
}

// check refuses a plan that the hub's password lockouts would bend: a
// user's or an address's last allowed failure locks it, and a locked
// login answers 429 without hashing.
func (p burstPlan) check() error {
	user, source := p.maxFailures()
	if user >= authcore.PasswordFailures {
		return fmt.Errorf("--password-wrong gives a user %d wrong passwords, and %d lock its password login: raise --password-users or lower --password-wrong",
			user, authcore.PasswordFailures)
	}
	if source >= authcore.PasswordAddrFails {
		return fmt.Errorf("--password-wrong gives a source address %d wrong passwords, and %d lock it: raise --sources or lower --password-wrong",
			source, authcore.PasswordAddrFails)
	}
	return nil
}

// burstUser is a user prepared for the burst: a username and a password.
type burstUser struct {
	login, password string
}

// burster prepares the burst's users and fires the burst, from source
// addresses of its own (after those of every worker process), so that the
// hub's per-address failure counts never touch the flows' addresses.
type burster struct {
	cfg   config
	plan  burstPlan
	net   *netenv
	users []burstUser
	reqs  atomic.Int64
}

func newBurster(cfg config) *burster {
	b := &burster{cfg: cfg, plan: cfg.burstPlan()}
	nc := cfg
	nc.sourceOffset = cfg.burstSourceOffset()
	b.net = newNetenv(nc, &b.reqs)
	return b
}

func (b *burster) close() { b.net.closeIdle(true) }

// prepare makes the users: each logs in through the sandbox's wx.login,
// then sets a username and a password (one hash each), prepConcurrency at
// a time, user j on node j mod n.
func (b *burster) prepare(ctx context.Context) error {
	var nonce [4]byte
	rand.Read(nonce[:])
	run := hex.EncodeToString(nonce[:])
	b.users = make([]burstUser, b.plan.users)
	errs := make([]error, b.plan.users)
	var wg sync.WaitGroup
	sem := make(chan struct{}, prepConcurrency)
	for j := range b.plan.users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u := burstUser{login: fmt.Sprintf("bpw%s-%d", run, j), password: fmt.Sprintf("burst-%s-%d-pw", run, j)}
			errs[j] = b.prepareUser(ctx, b.net.sources[j%len(b.net.sources)], b.cfg.baseURLs[j%b.cfg.nodes()], u)
			b.users[j] = u
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("preparing password users: %w", err)
	}
	return nil
}

func (b *burster) prepareUser(ctx context.Context, src *source, base string, u burstUser) error {
	token, err := src.sandboxLogin(ctx, base, u.login)
	if err != nil {
		return err
	}
	if err := src.call(ctx, "set_username", "PUT", base+"/v1/me/username", token,
		map[string]string{"username": u.login}, nil, http.StatusNoContent); err != nil {
		return err
	}
	return src.call(ctx, "set_password", "PUT", base+"/v1/me/password", token,
		map[string]string{"password": u.password}, nil, http.StatusNoContent)
}

// burstReport is how a burst went. Latencies are raw samples in
// nanoseconds, from the burst's start (every login sent at once) to each
// answer.
type burstReport struct {
	start, end time.Time // the burst's start, and its last answer
	answers    map[string]int
	all, ok    []int64
}

// fire dials a connection per login (plain http: before the start, so
// that the logins reach the hub at once), waits until at, calls started,
// then sends every login at once and waits for every answer. When ctx
// ends before at, nothing is sent and the report's start is zero.
func (b *burster) fire(ctx context.Context, at time.Time, started func()) burstReport {
	p := b.plan
	answers := make([]burstAnswer, p.n)
	// Dial shortly before: a connection held open long may meet the
	// hub's idle timeout.
	sleepCtx(ctx, time.Until(at.Add(-burstDialAhead)))
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range p.n {
		ready.Add(1)
		done.Go(func() {
			answers[i] = b.login(ctx, i, &ready, start)
		})
	}
	ready.Wait()
	sleepCtx(ctx, time.Until(at))
	rep := burstReport{answers: map[string]int{}}
	if ctx.Err() == nil {
		started()
		rep.start = time.Now()
		close(start)
	}
	done.Wait()
	if !rep.start.IsZero() {
		rep.end = time.Now()
	}
	for _, a := range answers {
		rep.answers[a.kind]++
		if a.took > 0 {
			rep.all = append(rep.all, int64(a.took))
			if a.kind == "200" {
				rep.ok = append(rep.ok, int64(a.took))
			}
		}
	}
	return rep
}

// burstAnswer is one login's answer: its kind ("200",
// "401_unauthorized", "503_upstream_unavailable", a transport error) and
// how long it took from the burst's start (0 when it was not sent).
type burstAnswer struct {
	kind string
	took time.Duration
}

// login is password login i of the burst: ready once its connection is
// open, sent when start closes.
func (b *burster) login(ctx context.Context, i int, ready *sync.WaitGroup, start <-chan struct{}) (a burstAnswer) {
	p := b.plan
	u := b.users[p.user(i)]
	pw := u.password
	if p.isWrong(i) {
		pw += "-wrong"
	}
	src := b.net.sources[p.source(i)]
	url := b.cfg.baseURLs[i%b.cfg.nodes()] + "/v1/password/login"
	body, _ := json.Marshal(map[string]string{"login": u.login, "password": pw})
	host, path, plain := splitHTTPURL(url)
	var hc *h1Conn
	if plain {
		dctx, cancel := context.WithTimeout(ctx, burstTimeout)
		c, err := src.h1.get(dctx, host)
		cancel()
		if err != nil {
			ready.Done()
			a.kind = "dial:" + netKind(err)
			return a
		}
		hc = c
	}
	ready.Done()
	select {
	case <-start:
	case <-ctx.Done():
		if hc != nil {
			hc.c.Close()
		}
		a.kind = netKind(ctx.Err())
		return a
	}
	ctx, cancel := context.WithTimeout(ctx, burstTimeout)
	defer cancel()
	t0 := time.Now()
	var status int
	var data []byte
	var err error
	if plain {
		var res h1Response
		res, err = src.h1.send(ctx, hc, "POST", host, path, "", body)
		status, data = res.status, res.body
	} else {
		status, data, err = src.roundTrip(ctx, "POST", url, "", body)
	}
	a.took = time.Since(t0)
	b.reqs.Add(1)
	if err != nil {
		a.kind = netKind(err)
		return a
	}
	a.kind = fmt.Sprint(status)
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		if e.Error != "" {
			a.kind += "_" + e.Error
		}
	}
	return a
}

// burstMemory is what peakRSS read: the hubs' RSS and heap goals, summed
// over the nodes.
type burstMemory struct {
	first, peak, peakGoal float64
	reads                 int
}

// peakRSS reads the hubs' RSS and heap goal every burstRSSEvery until stop
// closes and burstRSSTail more has passed (or ctx ends): the first RSS
// read, and the highest of each.
func (pr *probe) peakRSS(ctx context.Context, stop <-chan struct{}) (mem burstMemory) {
	t := time.NewTicker(burstRSSEvery)
	defer t.Stop()
	var tail <-chan time.Time
	for {
		if m, err := pr.readNodes(ctx); err == nil {
			s := m.sum()
			if mem.reads == 0 {
				mem.first = s.RSS
			}
			mem.peak, mem.peakGoal = max(mem.peak, s.RSS), max(mem.peakGoal, s.HeapGoal)
			mem.reads++
		}
		select {
		case <-ctx.Done():
			return mem
		case <-stop:
			stop = nil
			tail = time.After(burstRSSTail)
		case <-tail:
			return mem
		case <-t.C:
		}
	}
}

// splitByWindow splits latency samples by when each began (unix
// nanoseconds, in the same order): those that began within [from, to],
// and the others.
func splitByWindow(samples, began []int64, from, to time.Time) (in, out []int64) {
	f, t := from.UnixNano(), to.UnixNano()
	for k, s := range samples {
		if k < len(began) && began[k] >= f && began[k] <= t {
			in = append(in, s)
		} else {
			out = append(out, s)
		}
	}
	return in, out
}
