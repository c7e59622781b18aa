package handlers

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore/memstore"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := ClientIPs{Trusted: trusted}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer's XFF is ignored", "203.0.113.7:5000", []string{"1.2.3.4"}, "203.0.113.7"},
		{"trusted proxy", "10.1.1.1:5000", []string{"198.51.100.9"}, "198.51.100.9"},
		{"right-most untrusted entry wins", "10.1.1.1:5000", []string{"6.6.6.6, 198.51.100.9, 10.2.2.2"}, "198.51.100.9"},
		{"several headers are one list", "127.0.0.1:5000", []string{"6.6.6.6", "198.51.100.9"}, "198.51.100.9"},
		{"all trusted: the peer", "10.1.1.1:5000", []string{"10.3.3.3"}, "10.1.1.1"},
		{"garbage chain: the peer", "10.1.1.1:5000", []string{"not-an-ip"}, "10.1.1.1"},
		{"garbage left of a trusted hop: the peer", "10.1.1.1:5000", []string{"6.6.6.6, not-an-ip, 10.2.2.2"}, "10.1.1.1"},
		{"IPv4 entry with a port", "10.1.1.1:5000", []string{"198.51.100.7:4444"}, "198.51.100.7"},
		{"IPv6 entry with a port", "10.1.1.1:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"bracketed IPv6 entry", "10.1.1.1:5000", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"trusted hop with a port is skipped", "10.1.1.1:5000", []string{"198.51.100.7, 10.2.2.2:80"}, "198.51.100.7"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:5000", nil, "203.0.113.7"},
		{"IPv6 peer", "[2001:db8::1]:5000", nil, "2001:db8::1"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := c.ClientIP(r); got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := ParsePrefixes("10.0.0.0/8, nonsense"); err == nil {
		t.Error("ParsePrefixes accepted nonsense")
	}
}

func TestSaneRequestID(t *testing.T) {
	for id, want := range map[string]bool{"abc-123_X": true, "": false, "has space": false, "<script>": false, string(make([]byte, 65)): false} {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestRateLimitKeys: an IPv6 client is counted by its /64 (else a /64 has
// 2^64 buckets), an IPv4 client (IPv4-mapped IPv6 too) by its address.
func TestRateLimitKeys(t *testing.T) {
	d := Deps{Logger: slog.New(slog.DiscardHandler), Limiter: memstore.New(nil, nil)}
	h := rateLimit(d, "test", 1)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	status := func(peer string) int {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = peer
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	steps := []struct {
		peer string
		want int
	}{
		{"[2001:db8:1:2::1]:5000", http.StatusOK},
		{"[2001:db8:1:2:ffff::7]:5000", http.StatusTooManyRequests}, // same /64
		{"[2001:db8:1:3::1]:5000", http.StatusOK},                   // another /64
		{"203.0.113.7:5000", http.StatusOK},
		{"[::ffff:203.0.113.7]:5000", http.StatusTooManyRequests}, // the same IPv4 client
		{"203.0.113.8:5000", http.StatusOK},                       // IPv4: the full address
	}
	for _, s := range steps {
		if got := status(s.peer); got != s.want {
			t.Errorf("request from %s: got %d, want %d", s.peer, got, s.want)
		}
	}
}

// TestClientIPWarnings: a garbled X-Forwarded-For and X-Forwarded-For from
// an untrusted private peer (a proxy missing from the trusted list) are
// logged, once however many requests carry them.
func TestClientIPWarnings(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c := NewClientIPs(trusted, slog.New(slog.NewTextHandler(&buf, nil)))
	for range 100 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.1.1.1:5000"
		r.Header.Set("X-Forwarded-For", "not-an-ip")
		if got, want := c.ClientIP(r), netip.MustParseAddr("10.1.1.1"); got != want {
			t.Fatalf("garbled chain: got %s, want %s", got, want)
		}
		r = httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.168.1.5:5000" // a proxy that is not in the trusted list
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		if got, want := c.ClientIP(r), netip.MustParseAddr("192.168.1.5"); got != want {
			t.Fatalf("untrusted peer: got %s, want %s", got, want)
		}
		r = httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.9:5000" // a public client forging the header: not worth a warning
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		c.ClientIP(r)
	}
	log := buf.String()
	for _, want := range []string{"not an address", "LOGINHUB_TRUSTED_PROXIES"} {
		if n := strings.Count(log, want); n != 1 {
			t.Errorf("log has %d lines with %q, want 1:\n%s", n, want, log)
		}
	}
	if strings.Contains(log, "203.0.113.9") {
		t.Errorf("a public peer's X-Forwarded-For was logged:\n%s", log)
	}
}

// TestRequestIDOnlyFromTrustedProxies: a client's X-Request-Id would land
// in the audit trail; only a trusted proxy's is kept.
func TestRequestIDOnlyFromTrustedProxies(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := requestID(slog.New(slog.DiscardHandler), ClientIPs{Trusted: trusted})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = requestIDOf(r)
	}))
	for _, tc := range []struct {
		peer string
		kept bool
	}{{"10.1.1.1:5000", true}, {"203.0.113.7:5000", false}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		r.Header.Set("X-Request-Id", "given-id")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := seen == "given-id"; got != tc.kept {
			t.Errorf("from %s: request id %q; kept %v, want %v", tc.peer, seen, got, tc.kept)
		}
		if echoed := w.Header().Get("X-Request-Id"); echoed != seen || seen == "" {
			t.Errorf("from %s: echoed %q, the handler saw %q", tc.peer, echoed, seen)
		}
	}
}
