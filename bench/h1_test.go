package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSplitHTTPURL(t *testing.T) {
	cases := []struct{ raw, host, path string }{
		{"http://127.0.0.1:8090/v1/qr/tickets", "127.0.0.1:8090", "/v1/qr/tickets"},
		{"http://127.0.0.1:8090/v1/qr/tickets/x?wait=25&since=1", "127.0.0.1:8090", "/v1/qr/tickets/x?wait=25&since=1"},
		{"http://localhost", "localhost:80", "/"},
		{"http://[::1]:8080/x", "[::1]:8080", "/x"},
		{"http://[::1]/x", "[::1]:80", "/x"},
	}
	for _, c := range cases {
		host, path, ok := splitHTTPURL(c.raw)
		if !ok || host != c.host || path != c.path {
			t.Errorf("splitHTTPURL(%q) = %q, %q, %v; want %q, %q", c.raw, host, path, ok, c.host, c.path)
		}
	}
	if _, _, ok := splitHTTPURL("https://127.0.0.1:8443/x"); ok {
		t.Error("https must go through net/http")
	}
}

// TestH1Pool checks the light client against net/http's server: requests
// arrive as sent, keep-alive connections are reused, a "Connection: close"
// answer is not, chunked bodies are read, and a cancelled context ends a
// request that the server holds.
func TestH1Pool(t *testing.T) {
	var conns atomic.Int32
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Auth", r.Header.Get("Authorization"))
			w.Header().Set("X-Type", r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(r.Method + " " + r.URL.RequestURI() + " " + string(body)))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/chunked":
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		case "/hold":
			select {
			case held <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	defer close(release)
	host := strings.TrimPrefix(srv.URL, "http://")
	var d net.Dialer
	p := &h1Pool{dial: d.DialContext}
	defer p.closeIdle(true)
	ctx := context.Background()

	for i := range 3 {
		res, err := p.do(ctx, "POST", host, "/echo?x=1", "tok", []byte(`{"a":1}`))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.status != http.StatusCreated || string(res.body) != `POST /echo?x=1 {"a":1}` {
			t.Fatalf("request %d: %d %q", i, res.status, res.body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 requests in a row opened %d connections, want 1 (keep-alive)", n)
	}
	if res, err := p.do(ctx, "GET", host, "/close", "", nil); err != nil || string(res.body) != "bye" {
		t.Fatalf("close: %v %q", err, res.body)
	}
	if res, err := p.do(ctx, "GET", host, "/chunked", "", nil); err != nil || string(res.body) != "ab" {
		t.Fatalf("chunked: %v %q", err, res.body)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("after a Connection: close answer: %d connections, want 2", n)
	}

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := p.do(cctx, "GET", host, "/hold", "", nil)
		done <- err
	}()
	<-held // the server holds the request
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled request: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled request did not end")
	}

	tctx, tcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer tcancel()
	if _, err := p.do(tctx, "GET", host, "/hold", "", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request past its deadline: %v, want context.DeadlineExceeded", err)
	}
}
