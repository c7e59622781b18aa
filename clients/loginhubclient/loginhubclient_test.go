package loginhubclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeHub answers GET /v1/me as the hub does: 200 with the user of a token
// it knows, 401 otherwise; status, when set, overrides the answer.
type fakeHub struct {
	*httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	users  map[string]string // token → user id
	status int
	delay  time.Duration
}

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{users: map[string]string{"tok-alice": "u_alice", "tok-bob": "u_bob"}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/me" {
			t.Errorf("fake hub: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		f.calls.Add(1)
		f.mu.Lock()
		status, delay := f.status, f.delay
		id, ok := f.users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case status != 0:
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "7")
			}
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"internal","message":"boom"}`)
		case !ok:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized","message":"invalid or expired access token"}`)
		default:
			fmt.Fprintf(w, `{"user":{"id":%q,"nickname":"Alice","avatar_url":"","openid":"o1"},"session":{"amr":["wx"],"auth_time":"2025-01-02T03:04:05Z"}}`, id)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHub) set(status int, delay time.Duration) {
	f.mu.Lock()
	f.status, f.delay = status, delay
	f.mu.Unlock()
}

// guarded serves what the middleware lets through: the user's id.
func guarded(t *testing.T, c *Client) http.Handler {
	return c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		me, ok := FromContext(r.Context())
		if !ok {
			t.Error("FromContext found no user behind the middleware")
			return
		}
		fmt.Fprint(w, me.User.ID+" "+strings.Join(me.Session.AMR, ","))
	}))
}

func serve(h http.Handler, authorization string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/api/thing", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct{ Error, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Message == "" {
		t.Errorf("error body %q is not the hub's error JSON: %v", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return body.Error
}

func newClient(t *testing.T, c Config) (*Client, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	cl, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return cl, &logs
}

func TestClientMiddleware(t *testing.T) {
	tests := []struct {
		name       string
		auth       string
		hubStatus  int
		wantStatus int
		wantBody   string // for 200
		wantCode   string // for errors
		wantCalls  int64
	}{
		{name: "accepted", auth: "Bearer tok-alice", wantStatus: 200, wantBody: "u_alice wx", wantCalls: 1},
		{name: "scheme in any case", auth: "bearer tok-bob", wantStatus: 200, wantBody: "u_bob wx", wantCalls: 1},
		{name: "refused", auth: "Bearer tok-mallory", wantStatus: 401, wantCode: "unauthorized", wantCalls: 1},
		{name: "no header", wantStatus: 401, wantCode: "unauthorized"},
		{name: "not bearer", auth: "Basic dXNlcjpwYXNz", wantStatus: 401, wantCode: "unauthorized"},
		{name: "empty token", auth: "Bearer ", wantStatus: 401, wantCode: "unauthorized"},
		{name: "control character", auth: "Bearer a\x01b", wantStatus: 401, wantCode: "unauthorized"},
		{name: "too long", auth: "Bearer " + strings.Repeat("a", maxTokenLen+1), wantStatus: 401, wantCode: "unauthorized"},
		{name: "hub failing", auth: "Bearer tok-alice", hubStatus: 500, wantStatus: 503, wantCode: "upstream_unavailable", wantCalls: 1},
		{name: "hub busy", auth: "Bearer tok-alice", hubStatus: 429, wantStatus: 503, wantCode: "upstream_unavailable", wantCalls: 1},
		{name: "wrong BaseURL", auth: "Bearer tok-alice", hubStatus: 404, wantStatus: 503, wantCode: "upstream_unavailable", wantCalls: 1},
		{name: "garbled answer", auth: "Bearer tok-alice", hubStatus: 200, wantStatus: 503, wantCode: "upstream_unavailable", wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := newFakeHub(t)
			hub.set(tt.hubStatus, 0)
			c, logs := newClient(t, Config{BaseURL: hub.URL})
			w := serve(guarded(t, c), tt.auth)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == 200 {
				if got := w.Body.String(); got != tt.wantBody {
					t.Errorf("handler saw %q, want %q", got, tt.wantBody)
				}
			} else if got := errorCode(t, w); got != tt.wantCode {
				t.Errorf("error = %q, want %q", got, tt.wantCode)
			}
			if tt.wantStatus == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
			if tt.hubStatus == 429 && w.Header().Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q, want the hub's 7", w.Header().Get("Retry-After"))
			}
			if got := hub.calls.Load(); got != tt.wantCalls {
				t.Errorf("hub asked %d times, want %d", got, tt.wantCalls)
			}
			if strings.Contains(logs.String(), "tok-") {
				t.Errorf("a token is in the logs: %s", logs)
			}
		})
	}
}

func TestClientCache(t *testing.T) {
	hub := newFakeHub(t)
	c, _ := newClient(t, Config{BaseURL: hub.URL, CacheTTL: 30 * time.Second})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	for range 3 {
		if _, err := c.Check(ctx, "tok-alice"); err != nil {
			t.Fatal(err)
		}
	}
	if got := hub.calls.Load(); got != 1 {
		t.Errorf("3 checks within the TTL asked the hub %d times, want 1", got)
	}
	now = now.Add(30 * time.Second)
	if _, err := c.Check(ctx, "tok-alice"); err != nil {
		t.Fatal(err)
	}
	if got := hub.calls.Load(); got != 2 {
		t.Errorf("a check after the TTL asked the hub %d times in all, want 2", got)
	}

	// Refusals are not cached: a token the hub refuses is asked about each time.
	for range 2 {
		if _, err := c.Check(ctx, "tok-mallory"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Check(refused) = %v, want ErrUnauthorized", err)
		}
	}
	if got := hub.calls.Load(); got != 4 {
		t.Errorf("2 refused checks: hub asked %d times in all, want 4", got)
	}
	// Nor are failures.
	hub.set(503, 0)
	if _, err := c.Check(ctx, "tok-bob"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check(hub down) = %v, want ErrUnavailable", err)
	}
	hub.set(0, 0)
	if _, err := c.Check(ctx, "tok-bob"); err != nil {
		t.Fatalf("Check after the hub came back: %v", err)
	}

	// The cache keeps hashes, never the tokens.
	c.mu.Lock()
	for k := range c.cache {
		if strings.Contains(string(k[:]), "tok-") {
			t.Error("the cache holds a token")
		}
	}
	c.mu.Unlock()
}

func TestClientCacheBounded(t *testing.T) {
	hub := newFakeHub(t)
	const size = 5
	for i := range 3 * size {
		hub.users[fmt.Sprintf("tok-%d", i)] = fmt.Sprintf("u_%d", i)
	}
	c, _ := newClient(t, Config{BaseURL: hub.URL, CacheSize: size})
	for i := range 3 * size {
		if _, err := c.Check(context.Background(), fmt.Sprintf("tok-%d", i)); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		n := len(c.cache)
		c.mu.Unlock()
		if n > size {
			t.Fatalf("after %d tokens the cache holds %d, more than its size %d", i+1, n, size)
		}
	}
}

func TestClientNoCache(t *testing.T) {
	hub := newFakeHub(t)
	c, _ := newClient(t, Config{BaseURL: hub.URL, CacheTTL: -1})
	for range 2 {
		if _, err := c.Check(context.Background(), "tok-alice"); err != nil {
			t.Fatal(err)
		}
	}
	if got := hub.calls.Load(); got != 2 {
		t.Errorf("without a cache 2 checks asked the hub %d times, want 2", got)
	}
}

// Concurrent checks of one token ask the hub once.
func TestClientConcurrentChecksShareOneQuestion(t *testing.T) {
	hub := newFakeHub(t)
	hub.set(0, 100*time.Millisecond)
	c, _ := newClient(t, Config{BaseURL: hub.URL})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := c.Check(context.Background(), "tok-alice"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := hub.calls.Load(); got != 1 {
		t.Errorf("10 concurrent checks asked the hub %d times, want 1", got)
	}
}

func TestClientTimeouts(t *testing.T) {
	hub := newFakeHub(t)
	hub.set(0, time.Second)
	c, _ := newClient(t, Config{BaseURL: hub.URL, Timeout: 100 * time.Millisecond})
	start := time.Now()
	w := serve(guarded(t, c), "Bearer tok-alice")
	if w.Code != 503 {
		t.Errorf("a hub slower than Timeout: status %d, want 503", w.Code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the check took %v, Timeout is 100ms", d)
	}

	// A caller that gives up is answered at once.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c2, _ := newClient(t, Config{BaseURL: hub.URL})
	if _, err := c2.Check(ctx, "tok-bob"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Check with an ended context = %v, want ErrUnavailable", err)
	}
}

func TestClientHubUnreachable(t *testing.T) {
	hub := newFakeHub(t)
	url := hub.URL
	hub.Close()
	c, logs := newClient(t, Config{BaseURL: url})
	w := serve(guarded(t, c), "Bearer tok-alice")
	if w.Code != 503 || errorCode(t, w) != "upstream_unavailable" {
		t.Errorf("unreachable hub: %d %s, want 503 upstream_unavailable", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "asking the hub failed") || strings.Contains(logs.String(), "tok-alice") {
		t.Errorf("logs should say the hub failed, without the token: %s", logs)
	}
}

func TestClientConfigValidate(t *testing.T) {
	for _, bad := range []Config{
		{},
		{BaseURL: "login.example.com"},
		{BaseURL: "ftp://login.example.com"},
		{BaseURL: "https://login.example.com?x=1"},
		{BaseURL: "https://login.example.com", Timeout: -1},
		{BaseURL: "https://login.example.com", CacheSize: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted it", bad)
		}
	}
	if _, err := New(Config{BaseURL: "https://login.example.com/"}); err != nil {
		t.Errorf("New with a good BaseURL: %v", err)
	}
}
