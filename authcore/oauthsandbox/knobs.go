package oauthsandbox

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Knobs are the failure knobs and counters every fake provider exports, as
// wechattest.Server's: a fake embeds Knobs and passes every request through
// Serve. The zero value is ready; the methods are safe for concurrent use
// with each other and with requests being served.
type Knobs struct {
	mu       sync.Mutex
	ready    bool
	now      func() time.Time
	requests map[string]int
	arrived  chan struct{} // closed and replaced on every request, for WaitRequests
	unknown  []string
	fails    map[string][]failure
	holds    map[string]chan struct{}
	down     bool
}

type failure struct {
	code   int // the provider's error code, when status is 0
	status int // HTTP status of a gateway error page
	n      int
}

func (k *Knobs) initLocked() {
	if k.ready {
		return
	}
	k.ready = true
	k.now = time.Now
	k.requests = make(map[string]int)
	k.arrived = make(chan struct{})
	k.fails = make(map[string][]failure)
	k.holds = make(map[string]chan struct{})
}

// SetClock makes the fake read the time from now, for expiry tests; nil
// restores time.Now. Codes and tokens already issued are judged by the new
// clock.
func (k *Knobs) SetClock(now func() time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.initLocked()
	if now == nil {
		now = time.Now
	}
	k.now = now
}

// Now is the fake's time (SetClock).
func (k *Knobs) Now() time.Time {
	k.mu.Lock()
	k.initLocked()
	now := k.now
	k.mu.Unlock()
	return now()
}

// FailNext makes the next n requests to path fail with the provider's
// error code, in the form the provider uses on that path, without any
// other effect (a code sent with them is not consumed). Failures queue up
// behind earlier ones for the same path. path is relative to the mount
// point ("/oauth2.0/me").
func (k *Knobs) FailNext(path string, code, n int) {
	k.queue(path, failure{code: code, n: n})
}

// FailNextHTTP makes the next n requests to path answer HTTP status with
// an HTML page, as a failing gateway in front of the provider does.
func (k *Knobs) FailNextHTTP(path string, status, n int) {
	k.queue(path, failure{status: status, n: n})
}

func (k *Knobs) queue(path string, f failure) {
	if f.n <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.initLocked()
	path = cleanPath(path)
	k.fails[path] = append(k.fails[path], f)
}

// Hold makes requests to path wait, after being counted, until release is
// called (or their client goes away): a slow provider. release is
// idempotent; requests that arrive after it pass through.
func (k *Knobs) Hold(path string) (release func()) {
	ch := make(chan struct{})
	k.mu.Lock()
	k.initLocked()
	path = cleanPath(path)
	k.holds[path] = ch
	k.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			if k.holds[path] == ch {
				delete(k.holds, path)
			}
			k.mu.Unlock()
			close(ch)
		})
	}
}

// SetDown simulates an outage: until SetDown(false) every request is
// counted and answered HTTP 503 with an HTML page.
func (k *Knobs) SetDown(down bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.initLocked()
	k.down = down
}

// Requests returns how many requests path has received, failed, held and
// injected ones included.
func (k *Knobs) Requests(path string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.initLocked()
	return k.requests[cleanPath(path)]
}

// WaitRequests blocks until path has received at least n requests or done
// is closed, and reports whether the count was reached: tests wait for an
// event with it instead of sleeping.
func (k *Knobs) WaitRequests(done <-chan struct{}, path string, n int) bool {
	path = cleanPath(path)
	for {
		k.mu.Lock()
		k.initLocked()
		got, arrived := k.requests[path], k.arrived
		k.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-arrived:
		case <-done:
			return false
		}
	}
}

// UnknownRequests returns "METHOD /path" of every request to a path the
// fake does not serve, oldest first. Tests should assert it is empty
// (Start does).
func (k *Knobs) UnknownRequests() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.unknown...)
}

// Routes is what a fake gives Serve.
type Routes struct {
	// Paths are the handlers of the paths the fake serves.
	Paths map[string]http.HandlerFunc
	// Fail answers an injected failure: the provider's error code in the
	// provider's form for r's path.
	Fail func(w http.ResponseWriter, r *http.Request, code int)
	// NotFound answers a path Route does not know; nil means a plain 404.
	NotFound http.HandlerFunc
}

// Serve is the front of a fake's ServeHTTP: it counts the request, answers
// 503 while down, waits while the path is held, answers a path rt.Route
// does not know with rt.NotFound (recording it for UnknownRequests),
// answers an injected failure with rt.Fail or a gateway page, and
// otherwise calls the path's handler.
func (k *Knobs) Serve(w http.ResponseWriter, r *http.Request, rt Routes) {
	path := cleanPath(r.URL.Path)
	k.mu.Lock()
	k.initLocked()
	k.requests[path]++
	close(k.arrived)
	k.arrived = make(chan struct{})
	hold, down := k.holds[path], k.down
	k.mu.Unlock()

	if down {
		gatewayPage(w, http.StatusServiceUnavailable)
		return
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return // the client gave up; nobody reads an answer
		}
	}
	h := rt.Paths[path]
	if h == nil {
		k.mu.Lock()
		k.unknown = append(k.unknown, r.Method+" "+path)
		k.mu.Unlock()
		if rt.NotFound != nil {
			rt.NotFound(w, r)
		} else {
			http.Error(w, "404 page not found: "+path, http.StatusNotFound)
		}
		return
	}
	if f, ok := k.takeFailure(path); ok {
		if f.status != 0 {
			gatewayPage(w, f.status)
		} else {
			rt.Fail(w, r, f.code)
		}
		return
	}
	h(w, r)
}

func (k *Knobs) takeFailure(path string) (failure, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := k.fails[path]
	if len(q) == 0 {
		return failure{}, false
	}
	f := q[0]
	if q[0].n--; q[0].n == 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(k.fails, path)
	} else {
		k.fails[path] = q
	}
	return f, true
}

func gatewayPage(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", status, http.StatusText(status))
}

func cleanPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// Clock is a clock moved by hand, for Knobs.SetClock(c.Now) in expiry
// tests. The zero value reads the zero time. Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// ManualClock makes the fake read its time from a Clock set to t, moved by
// hand, and returns the Clock.
func (k *Knobs) ManualClock(t time.Time) *Clock {
	c := NewClock(t)
	k.SetClock(c.Now)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
