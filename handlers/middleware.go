package handlers

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// ClientIPs finds a request's real client address: the TCP peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. X-Forwarded-For from anyone else is ignored,
// so a client cannot pick its own address and slip past IP binding or rate
// limits. Make one with NewClientIPs to have its warnings logged; copies
// share them.
type ClientIPs struct {
	Trusted []netip.Prefix
	warn    *xffWarnings // nil: nothing is logged
}

// NewClientIPs returns a ClientIPs over trusted that logs to log what looks
// like a misconfigured proxy, at most once a minute per kind of problem, so
// that a flood of bad headers cannot flood the log.
func NewClientIPs(trusted []netip.Prefix, log *slog.Logger) ClientIPs {
	return ClientIPs{Trusted: trusted, warn: &xffWarnings{log: log}}
}

// xffWarnings rate-limits ClientIPs' warnings: each kind is logged when
// the last one of its kind is at least a minute old.
type xffWarnings struct {
	log       *slog.Logger
	garbled   atomic.Int64 // unix nanoseconds of the last "not an address" warning
	untrusted atomic.Int64 // of the last "X-Forwarded-For from an untrusted private peer" one
}

const xffWarnEvery = time.Minute

func (x *xffWarnings) due(last *atomic.Int64) bool {
	if x.log == nil {
		return false
	}
	now := time.Now().UnixNano()
	prev := last.Load()
	return (prev == 0 || now-prev >= int64(xffWarnEvery)) && last.CompareAndSwap(prev, now)
}

// ParsePrefixes parses comma-separated CIDRs or bare addresses.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("trusted proxies: %q is not an address or CIDR", part)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("trusted proxies: %q is not a CIDR", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (c ClientIPs) trusted(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(c.Trusted, func(p netip.Prefix) bool { return p.Contains(a) })
}

// fromTrusted reports whether r came from a trusted proxy.
func (c ClientIPs) fromTrusted(r *http.Request) bool {
	peer := peerAddr(r)
	return peer.IsValid() && c.trusted(peer)
}

// ClientIP returns the request's client address (invalid if unknown).
func (c ClientIPs) ClientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !c.trusted(peer) {
		// A private or loopback peer that sends X-Forwarded-For is most
		// likely a proxy missing from LOGINHUB_TRUSTED_PROXIES: every
		// client then has the proxy's address (one rate-limit bucket,
		// one IP binding for all).
		if c.warn != nil && (peer.IsPrivate() || peer.IsLoopback()) && len(r.Header["X-Forwarded-For"]) > 0 &&
			c.warn.due(&c.warn.untrusted) {
			c.warn.log.WarnContext(r.Context(), "X-Forwarded-For from a peer that is not a trusted proxy is ignored; "+
				"if it is your proxy, add it to LOGINHUB_TRUSTED_PROXIES", "peer", peer.String())
		}
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var entries []string
	for _, h := range hops {
		entries = append(entries, strings.Split(h, ",")...)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseHop(entries[i])
		if !ok {
			// A garbled chain: believe only the proxy that connected (the
			// right-most trusted hop), never an entry left of the garbage.
			if c.warn != nil && c.warn.due(&c.warn.garbled) {
				c.warn.log.WarnContext(r.Context(), "X-Forwarded-For entry is not an address; using the proxy's address",
					"peer", peer.String(), "entry", truncateForLog(strings.TrimSpace(entries[i]), 64))
			}
			return peer
		}
		if !c.trusted(a) {
			return a.Unmap()
		}
	}
	return peer
}

// parseHop parses one X-Forwarded-For entry: an address, or an address
// with a port ("198.51.100.7:4444", "[2001:db8::1]:443"), whose port some
// proxies add and which is ignored.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// truncateForLog cuts a client-supplied string for a log line.
func truncateForLog(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// rateKey is the part of a rate-limit key that names the client: an IPv4
// address (IPv4-mapped IPv6 included) in full, an IPv6 address by its /64,
// since one subscriber usually holds a whole /64 and would otherwise have
// 2^64 buckets.
func rateKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// requestID gives each request an id, echoes it, and logs the request once
// it completes. A sane incoming X-Request-Id is kept only from a trusted
// proxy: the id lands in the audit trail, where a client must not be able
// to write its own (or another request's). The id is
// written into the request's own X-Request-Id header, where requestIDOf
// reads it, rather than into a context value: that would copy the request
// (~300 bytes of garbage per request, on every request).
func requestID(log *slog.Logger, ips ClientIPs) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Request-Id")
			if !saneRequestID(id) || len(r.Header.Values("X-Request-Id")) > 1 || !ips.fromTrusted(r) {
				var b [8]byte
				rand.Read(b[:])
				id = hex.EncodeToString(b[:])
				r.Header.Set("X-Request-Id", id)
			}
			w.Header().Set("X-Request-Id", id)
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r)
			// The URL path may hold a signed ticket (/s/{ticket}); that is no
			// secret (it is printed in the QR code) but the query is not logged.
			log.LogAttrs(r.Context(), slog.LevelDebug, "http",
				slog.String("request_id", id), slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", sw.status),
				slog.Duration("duration", time.Since(start)))
		})
	}
}

// requestIDOf returns the id requestID gave the request (for audit
// entries).
func requestIDOf(r *http.Request) string {
	return r.Header.Get("X-Request-Id")
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// statusWriter records the status for the access log. It forwards Unwrap so
// that http.ResponseController (and the WebSocket upgrade) still reach the
// underlying connection.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack lets gorilla/websocket take over the connection.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	return h.Hijack()
}

// cors answers browsers from the allowed origins (and only those). Tokens
// travel in the Authorization header, never in cookies, so credentials
// mode is not enabled.
func cors(allowed func(origin string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin != "" && allowed(origin) {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
				h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
				if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
					h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP, X-Request-Id")
					h.Set("Access-Control-Max-Age", "600")
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Limiter counts events per key in fixed windows (memstore.Store and
// redisstore.Store implement it).
type Limiter interface {
	Allow(ctx context.Context, key string, limit int, per time.Duration) (ok bool, retryAfter time.Duration, err error)
}

// allowUser counts one call of name by who (a user id, or a user's
// session family when the token is not verified yet) against a tenth of
// Deps.CallRate a minute: what one address may not do alone, many
// addresses may not do to one account either. A failing limiter lets the
// call through, as rateLimit does.
func allowUser(d Deps, r *http.Request, name, who string) error {
	if d.CallRate <= 0 || who == "" {
		return nil
	}
	ok, retry, err := d.Limiter.Allow(r.Context(), "rlu:"+name+":"+who, max(d.CallRate/10, 1), time.Minute)
	switch {
	case err != nil:
		d.Logger.WarnContext(r.Context(), "rate limiter unavailable; allowing request", "err", err)
	case !ok:
		return &authcore.Error{Kind: authcore.KindRateLimited, Message: "too many requests for this account; slow down", RetryAfter: retry}
	}
	return nil
}

// tokenSession names the session family of a token for allowUser without
// verifying it: the family id is as secret as the token, so a stranger
// cannot spend someone else's allowance by forging tokens.
func tokenSession(token string) string {
	user, family, ok := authcore.TokenSession(token)
	if !ok {
		return ""
	}
	return user + "." + family
}

// rateLimit allows perMinute requests per client address per minute for the
// routes it wraps; 0 disables it. If the limiter itself fails the request
// goes through: a broken counter must not lock every user out.
func rateLimit(d Deps, name string, perMinute int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if perMinute <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := "rl:" + name + ":" + rateKey(d.ClientIPs.ClientIP(r))
			ok, retry, err := d.Limiter.Allow(r.Context(), key, perMinute, time.Minute)
			if err != nil {
				d.Logger.WarnContext(r.Context(), "rate limiter unavailable; allowing request", "err", err)
			} else if !ok {
				writeError(w, r, d.Logger, &authcore.Error{Kind: authcore.KindRateLimited,
					Message: "too many requests; slow down", RetryAfter: retry})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
