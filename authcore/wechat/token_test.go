package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/authcore/redisstore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// testClock is a clock the tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// within fails the test if done is not closed within 10 s.
func within(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

// waitGroupDone is closed when wg's count reaches zero.
func waitGroupDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// pileUp makes calls concurrent Token calls spread over the managers
// while stable_token is held, waits until every caller has joined its
// node's flight and every node but one waits for another node's refresh,
// then lets the one upstream request answer. It checks that all callers
// got the same token from that one request.
func pileUp(t *testing.T, srv *wechattest.Server, managers []*TokenManager, calls int) {
	t.Helper()
	release := srv.Hold(wechattest.PathStableToken)
	defer release()
	var joined, waiting sync.WaitGroup
	joined.Add(calls)
	waiting.Add(len(managers) - 1)
	for _, m := range managers {
		m.afterJoin = joined.Done
		m.onWait = waiting.Done
	}
	type result struct {
		token string
		err   error
	}
	results := make(chan result, calls)
	for i := range calls {
		m := managers[i%len(managers)]
		go func() {
			tok, err := m.Token(context.Background())
			results <- result{tok, err}
		}()
	}
	within(t, "all callers join their node's flight", waitGroupDone(&joined))
	within(t, "the nodes without the lock wait", waitGroupDone(&waiting))
	if !srv.WaitRequests(timeoutChan(t), wechattest.PathStableToken, 1) {
		t.Fatal("no stable_token request arrived")
	}
	release()

	var first string
	timeout := time.After(10 * time.Second)
	for range calls {
		select {
		case r := <-results:
			if r.err != nil || r.token == "" {
				t.Fatalf("Token = %q, %v", r.token, r.err)
			}
			if first == "" {
				first = r.token
			} else if r.token != first {
				t.Fatal("callers got different tokens")
			}
		case <-timeout:
			t.Fatal("Token calls did not return")
		}
	}
	if got := srv.Requests(wechattest.PathStableToken); got != 1 {
		t.Errorf("stable_token requests = %d for %d calls on %d nodes, want 1", got, calls, len(managers))
	}
	for _, m := range managers {
		m.afterJoin, m.onWait = nil, nil
	}
}

func timeoutChan(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() { close(ch) })
	t.Cleanup(func() { timer.Stop() })
	return ch
}

// TestTokenOneFetchForManyNodes: 200 concurrent Token calls on 3 hub nodes
// (3 Clients) that share one Redis cause one stable_token request.
func TestTokenOneFetchForManyNodes(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	cache := redisstore.New(rs.Client(), redisstore.Options{Prefix: "tokentest"})
	srv := &wechattest.Server{}
	var managers []*TokenManager
	for range 3 {
		f := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
		managers = append(managers, f.c.Tokens())
	}
	pileUp(t, srv, managers, 200)

	// The token is in Redis: a fourth node does not ask WeChat.
	f := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
	if _, err := f.c.Tokens().Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests(wechattest.PathStableToken); got != 1 {
		t.Errorf("stable_token requests = %d after a new node joined, want still 1", got)
	}
}

// TestTokenOneFetchForOneNode: the same on one node, with the memory store
// and with the Client's own cache.
func TestTokenOneFetchForOneNode(t *testing.T) {
	for name, cache := range map[string]TokenCache{"memstore": memstore.New(nil, nil), "default": nil} {
		t.Run(name, func(t *testing.T) {
			srv := &wechattest.Server{}
			f := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
			pileUp(t, srv, []*TokenManager{f.c.Tokens()}, 200)
		})
	}
}

// clockedNode is a Client on a fake clock shared with its Server and cache.
func clockedNode(t *testing.T, srv *wechattest.Server, clk *testClock, cache TokenCache) *fixture {
	t.Helper()
	f := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
	f.c.clock = clk.now
	return f
}

func mustToken(t *testing.T, m *TokenManager) string {
	t.Helper()
	tok, err := m.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestTokenProactiveRefresh(t *testing.T) {
	clk := newTestClock()
	srv := &wechattest.Server{}
	srv.SetClock(clk.now)
	cache := memstore.New(nil, clk.now)
	n1 := clockedNode(t, srv, clk, cache)
	n2 := clockedNode(t, srv, clk, cache)
	requests := func() int { return srv.Requests(wechattest.PathStableToken) }

	a := mustToken(t, n1.c.Tokens())
	if got := mustToken(t, n2.c.Tokens()); got != a || requests() != 1 {
		t.Fatalf("second node: %q after %d requests; want the first node's token after 1", got, requests())
	}
	clk.add(time.Hour + 54*time.Minute) // 6 minutes left
	if got := mustToken(t, n1.c.Tokens()); got != a || requests() != 1 {
		t.Fatalf("6 minutes before expiry: new token or request (%d); want the same token, no request", requests())
	}

	clk.add(2 * time.Minute) // 4 minutes left: inside the refresh window
	// While another node holds the refresh lease, the still-valid token
	// is served and nothing is fetched.
	release, ok, err := cache.TryLock(context.Background(), "at-refresh:"+n1.c.appID, time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := mustToken(t, n1.c.Tokens()); got != a || requests() != 1 {
		t.Fatalf("lease held elsewhere: got a new token or a request (%d); want the old token", requests())
	}
	release()
	b := mustToken(t, n1.c.Tokens())
	if b == a || requests() != 2 || srv.ForceRefreshes() != 0 {
		t.Fatalf("in the refresh window: same token %v, %d requests, %d forced; want a new token from 1 unforced request",
			b == a, requests(), srv.ForceRefreshes())
	}
	if got := mustToken(t, n2.c.Tokens()); got != b || requests() != 2 {
		t.Fatalf("other node after the refresh: new token %v after %d requests; want the refreshed one, no request", got == b, requests())
	}

	// A failed refresh in the window serves the old token, and does not
	// retry on every call.
	clk.add(time.Hour + 56*time.Minute)
	srv.FailNext(wechattest.PathStableToken, -1, 3)
	if got := mustToken(t, n1.c.Tokens()); got != b || requests() != 5 {
		t.Fatalf("refresh failing: new token %v after %d requests; want the old one after 3 more", got != b, requests())
	}
	if got := mustToken(t, n1.c.Tokens()); got != b || requests() != 5 {
		t.Fatalf("right after a failed refresh: %d requests; want none more", requests())
	}
	clk.add(renewBackoff)
	c := mustToken(t, n1.c.Tokens())
	if c == b || requests() != 6 {
		t.Fatalf("after the backoff: same token %v, %d requests; want a new token from 1 more request", c == b, requests())
	}

	// Past the expiry with no refresh possible: an error, not a dead token.
	clk.add(3 * time.Hour)
	srv.FailNext(wechattest.PathStableToken, 40013, 1)
	if _, err := n2.c.Tokens().Token(context.Background()); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Fatalf("expired and refresh refused: %v, want upstream_unavailable", err)
	}
}

// TestTokenWaitsForOtherNode: a node without a valid token, whose refresh
// lease another node holds, waits for that node's token instead of
// fetching; if the holder dies, it takes over when the lease expires.
func TestTokenWaitsForOtherNode(t *testing.T) {
	srv := &wechattest.Server{}
	cache := memstore.New(nil, nil)
	f := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
	m := f.c.Tokens()
	appid := f.c.appID

	for _, holderDies := range []bool{false, true} {
		t.Run(fmt.Sprintf("holder dies=%v", holderDies), func(t *testing.T) {
			cache.PutAccessToken(context.Background(), appid, "", time.Now().Add(-time.Second)) // none
			m.remember(cachedToken{})
			ttl := time.Hour
			if holderDies {
				ttl = 100 * time.Millisecond
			}
			release, ok, err := cache.TryLock(context.Background(), "at-refresh:"+appid, ttl)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			defer release()
			waiting := make(chan struct{})
			var once sync.Once
			m.onWait = func() { once.Do(func() { close(waiting) }) }
			defer func() { m.onWait = nil }()
			before := srv.Requests(wechattest.PathStableToken)
			got := make(chan string, 1)
			go func() {
				tok, err := m.Token(context.Background())
				if err != nil {
					t.Error(err)
				}
				got <- tok
			}()
			within(t, "the node starts waiting", waiting)
			want := "token-from-the-other-node"
			if !holderDies {
				cache.PutAccessToken(context.Background(), appid, want, time.Now().Add(time.Hour))
			}
			select {
			case tok := <-got:
				fetched := srv.Requests(wechattest.PathStableToken) - before
				if !holderDies && (tok != want || fetched != 0) {
					t.Errorf("got %q after %d fetches; want the other node's token, no fetch", tok, fetched)
				}
				if holderDies && (tok == "" || fetched != 1) {
					t.Errorf("got %q after %d fetches; want a token fetched once the dead holder's lease expired", tok, fetched)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Token did not return")
			}
		})
	}
}

// failingCache is a TokenCache whose store is down.
type failingCache struct{}

var errCacheDown = errors.New("cache down")

func (failingCache) AccessToken(context.Context, string) (string, time.Time, error) {
	return "", time.Time{}, errCacheDown
}
func (failingCache) PutAccessToken(context.Context, string, string, time.Time) error {
	return errCacheDown
}
func (failingCache) TryLock(context.Context, string, time.Duration) (func(), bool, error) {
	return nil, false, errCacheDown
}

// TestTokenCacheDown: without its cache a node still gets tokens, fetching
// for itself (stable_token hands every node the same one).
func TestTokenCacheDown(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, func(c *Config) { c.TokenCache = failingCache{} })
	a := mustToken(t, f.c.Tokens())
	if b := mustToken(t, f.c.Tokens()); b != a || srv.Requests(wechattest.PathStableToken) != 1 {
		t.Errorf("second call: same %v, %d requests; want the remembered token", a == b, srv.Requests(wechattest.PathStableToken))
	}
	if !strings.Contains(f.log.String(), "cache failed") {
		t.Errorf("log does not report the cache failure:\n%s", f.log.String())
	}
	// A rejected token is still replaced, by a forced refresh.
	if err := f.c.Tokens().Invalidate(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if b := mustToken(t, f.c.Tokens()); b == a || srv.ForceRefreshes() != 1 {
		t.Errorf("after Invalidate: same %v, %d forced; want a new, forced token", a == b, srv.ForceRefreshes())
	}
}

// phoneCode gets a phone-number button code for user from the fake.
func (f *fixture) phoneCode(user string) string {
	f.t.Helper()
	resp, err := http.Post(f.url+"/getPhoneNumber", "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q}`, user)))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Code string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Code == "" {
		f.t.Fatalf("getPhoneNumber button: %v, code %q", err, out.Code)
	}
	return out.Code
}

// TestTokenRejectedIsRefreshedOnce: an API call answered 40001, 42001 or
// 40014 invalidates the token, force-refreshes it and retries once.
func TestTokenRejectedIsRefreshedOnce(t *testing.T) {
	for _, errcode := range []int{40001, 42001, 40014} {
		t.Run(fmt.Sprint(errcode), func(t *testing.T) {
			srv := &wechattest.Server{}
			f := newFixture(t, srv, nil)
			code := f.phoneCode("olga")
			srv.FailNext(wechattest.PathGetPhoneNumber, errcode, 1)
			p, err := f.c.GetPhoneNumber(context.Background(), code)
			if err != nil || p.PurePhoneNumber != srv.User("olga").PurePhoneNumber {
				t.Fatalf("GetPhoneNumber = %+v, %v; want olga's number", p, err)
			}
			if a, b, forced := srv.Requests(wechattest.PathGetPhoneNumber), srv.Requests(wechattest.PathStableToken), srv.ForceRefreshes(); a != 2 || b != 2 || forced != 1 {
				t.Errorf("requests: %d phone, %d stable_token (%d forced); want 2, 2 (the second forced)", a, b, forced)
			}
		})
	}
}

// TestTokenRejectedTwice: a token refused again after the refresh is an
// upstream failure, and a second refresh within 30 s is not forced.
func TestTokenRejectedTwice(t *testing.T) {
	clk := newTestClock()
	srv := &wechattest.Server{}
	srv.SetClock(clk.now)
	f := clockedNode(t, srv, clk, nil)
	ctx := context.Background()

	srv.FailNext(wechattest.PathGetPhoneNumber, 40001, 2)
	_, err := f.c.GetPhoneNumber(ctx, f.phoneCode("pia"))
	wantKind(t, "refused twice", err, authcore.KindUpstreamUnavailable)
	if a, forced := srv.Requests(wechattest.PathGetPhoneNumber), srv.ForceRefreshes(); a != 2 || forced != 1 {
		t.Errorf("requests: %d phone, %d forced; want 2, 1", a, forced)
	}

	clk.add(10 * time.Second)
	srv.FailNext(wechattest.PathGetPhoneNumber, 42001, 1)
	_, err = f.c.GetPhoneNumber(ctx, f.phoneCode("pia"))
	e := wantKind(t, "refused again within 30s", err, authcore.KindUpstreamUnavailable)
	if e.RetryAfter != ForceRefreshInterval || srv.ForceRefreshes() != 1 {
		t.Errorf("RetryAfter %v, %d forced; want %v and no new forced refresh", e.RetryAfter, srv.ForceRefreshes(), ForceRefreshInterval)
	}

	clk.add(ForceRefreshInterval)
	srv.FailNext(wechattest.PathGetPhoneNumber, 42001, 1)
	if _, err := f.c.GetPhoneNumber(ctx, f.phoneCode("pia")); err != nil || srv.ForceRefreshes() != 2 {
		t.Errorf("30s later: %v, %d forced; want success after a second forced refresh", err, srv.ForceRefreshes())
	}
}

// TestInvalidateAdoptsNewerToken: when another node already replaced the
// rejected token, Invalidate takes the new one without asking WeChat.
func TestInvalidateAdoptsNewerToken(t *testing.T) {
	srv := &wechattest.Server{}
	cache := memstore.New(nil, nil)
	n1 := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
	n2 := newFixture(t, srv, func(c *Config) { c.TokenCache = cache })
	ctx := context.Background()
	a := mustToken(t, n1.c.Tokens())
	mustToken(t, n2.c.Tokens())
	if err := n1.c.Tokens().Invalidate(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := mustToken(t, n1.c.Tokens())
	if err := n2.c.Tokens().Invalidate(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := mustToken(t, n2.c.Tokens()); got != b || srv.ForceRefreshes() != 1 || srv.Requests(wechattest.PathStableToken) != 2 {
		t.Errorf("second node: adopted %v, %d forced, %d requests; want the first node's new token, 1 forced, 2 requests",
			got == b, srv.ForceRefreshes(), srv.Requests(wechattest.PathStableToken))
	}
}
