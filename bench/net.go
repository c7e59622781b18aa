package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/loginhub/loginhub/hub/ws"
)

// maxSourceAddrs is how many source addresses exist from 127.0.0.10 up to
// 127.0.255.254, skipping .0 and .255 last octets.
const maxSourceAddrs = 65000

// sourceAddr is the i-th source address: 127.0.0.10, 127.0.0.11, ...,
// 127.0.0.254, 127.0.1.1, ... (no .0 or .255 last octet).
func sourceAddr(i int) netip.Addr {
	k := 9 + i // 127.0.0.1 is k=0
	return netip.AddrFrom4([4]byte{127, 0, byte(k / 254), byte(k%254 + 1)})
}

var errSocketLimit = fmt.Errorf("more than %d sockets open in this process", maxSocketsPerProcess)

// netenv is one process's client side: a socket counter and one source per
// loopback address.
type netenv struct {
	sources []*source
	open    atomic.Int64 // sockets open now
	peak    atomic.Int64
	limit   int64
	closed  atomic.Bool // no more dials: a dial that finishes late is closed
}

var errNetClosed = errors.New("bench: client closed")

// source is everything bound to one local address: an HTTP client with
// its own connection pool, and a WebSocket dialer.
type source struct {
	addr   netip.Addr // invalid = unbound
	env    *netenv
	client *http.Client                                                      // https hubs
	h1     *h1Pool                                                           // plain-http hubs
	wsDial func(ctx context.Context, network, addr string) (net.Conn, error) // dial, for WebSockets: their sockets note when data arrived
	tr     *http.Transport
	dial   func(ctx context.Context, network, addr string) (net.Conn, error) // counted, from addr
	reqs   *atomic.Int64                                                     // every HTTP request made (all sources of a worker share it)
}

func newNetenv(cfg config, reqs *atomic.Int64) *netenv {
	e := &netenv{limit: maxSocketsPerProcess}
	n := max(cfg.sources, 1)
	for i := range n {
		s := &source{env: e, reqs: reqs}
		// No TCP keepalive: runs are short and the hub pings its sockets,
		// and turning it on takes four setsockopt calls per dial.
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
		if cfg.sources > 0 {
			s.addr = sourceAddr(cfg.sourceOffset + i)
			d.LocalAddr = &net.TCPAddr{IP: s.addr.AsSlice()}
			d.Control = bindNoPort
		}
		dial := e.counting(d)
		s.dial = dial
		s.tr = &http.Transport{
			DialContext:         dial,
			MaxIdleConnsPerHost: maxSocketsPerProcess, // keep every connection a desktop may reuse
			IdleConnTimeout:     60 * time.Second,
			DisableCompression:  true,
			ReadBufferSize:      4 << 10,
			WriteBufferSize:     4 << 10,
			TLSHandshakeTimeout: 10 * time.Second,
		}
		s.client = &http.Client{Transport: s.tr}
		s.h1 = &h1Pool{dial: dial}
		s.wsDial = stampingDial(dial)
		e.sources = append(e.sources, s)
	}
	return e
}

// dialAddr is where to dial u (host:port, the scheme's port if it names
// none) and, for https and wss, the TLS configuration.
func dialAddr(u *url.URL) (addr string, tlsConfig *tls.Config) {
	secure := u.Scheme == "https" || u.Scheme == "wss"
	if secure {
		tlsConfig = &tls.Config{ServerName: u.Hostname()}
	}
	port := u.Port()
	switch {
	case port != "":
	case secure:
		port = "443"
	default:
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port), tlsConfig
}

// stampingDial makes dial's TCP sockets remember when the kernel received
// what they read (see receivedAt).
func stampingDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if cc, ok := c.(*countedConn); ok {
			if tcp, ok := cc.Conn.(*net.TCPConn); ok {
				return stamped(c, tcp), nil
			}
		}
		return c, nil
	}
}

// counting wraps d so that no more than e.limit sockets are open at once.
func (e *netenv) counting(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if e.closed.Load() {
			return nil, errNetClosed
		}
		n := e.open.Add(1)
		if n > e.limit {
			e.open.Add(-1)
			return nil, errSocketLimit
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			e.open.Add(-1)
			return nil, err
		}
		if e.closed.Load() {
			// The Transport keeps a connection whose request was
			// cancelled while it was dialled; the hub would see it as a
			// new connection that never sends a request.
			c.Close()
			e.open.Add(-1)
			return nil, errNetClosed
		}
		for {
			p := e.peak.Load()
			if n <= p || e.peak.CompareAndSwap(p, n) {
				break
			}
		}
		return &countedConn{Conn: c, env: e}, nil
	}
}

// closeIdle closes the pooled connections; with final, no new ones are
// made after it.
func (e *netenv) closeIdle(final bool) {
	if final {
		e.closed.Store(true)
	}
	for _, s := range e.sources {
		s.h1.closeIdle(final)
		s.tr.CloseIdleConnections()
	}
}

type countedConn struct {
	net.Conn
	env  *netenv
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.env.open.Add(-1) })
	return c.Conn.Close()
}

// stepError is a failed step of a desktop or flow; Kind() is how errors
// are counted: "step:status_code" or "step:net_kind".
type stepError struct {
	step string
	kind string
}

func (e *stepError) Error() string { return e.step + ":" + e.kind }

func errKind(err error) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.Error()
	}
	return netKind(err)
}

// netKind names a transport error.
func netKind(err error) string {
	var ne net.Error
	var ce *ws.CloseError
	switch {
	case errors.Is(err, errSocketLimit):
		return "socket_limit"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_ephemeral_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &ce) && ce.Peer:
		return fmt.Sprintf("closed_%d", ce.Code)
	case errors.As(err, &ce):
		return "bad_frame" // from the hub
	}
	return "net"
}

// call does one JSON request and decodes a `want` response into out.
func (s *source) call(ctx context.Context, step, method, url, bearer string, body, out any, want int) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = b
	}
	s.reqs.Add(1)
	status, data, err := s.roundTrip(ctx, method, url, bearer, payload)
	if err != nil {
		return &stepError{step, netKind(err)}
	}
	if status != want {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		kind := fmt.Sprint(status)
		if e.Error != "" {
			kind += "_" + e.Error
		}
		return &stepError{step, kind}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &stepError{step, "bad_json"}
		}
	}
	return nil
}

// roundTrip sends one request, through the light client for plain http
// and net/http for https, and returns the status and the body.
func (s *source) roundTrip(ctx context.Context, method, url, bearer string, body []byte) (int, []byte, error) {
	if host, path, ok := splitHTTPURL(url); ok {
		res, err := s.h1.do(ctx, method, host, path, bearer, body)
		return res.status, res.body, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("User-Agent", "loginhub-bench")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, h1MaxBody))
	return resp.StatusCode, data, err
}

// sandboxLogin logs the sandbox WeChat user name in on the node at base
// (wx.login on the phone, then /v1/wx/login with its code: the sandbox's
// codes are known only to the node that issued them) and returns the
// session's access token.
func (s *source) sandboxLogin(ctx context.Context, base, name string) (string, error) {
	var code struct {
		Code string `json:"code"`
	}
	if err := s.call(ctx, "sandbox_wx_login", "POST", base+"/sandbox/wechat/wx.login", "",
		map[string]string{"user": name}, &code, http.StatusOK); err != nil {
		return "", fmt.Errorf("%w (sandbox users log in through the sandbox: run the hub without WeChat credentials)", err)
	}
	var sess struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.call(ctx, "wx_login", "POST", base+"/v1/wx/login", "",
		map[string]string{"code": code.Code, "nickname": name}, &sess, http.StatusOK); err != nil {
		return "", fmt.Errorf("%w (is LOGINHUB_LOGIN_RATE=0?)", err)
	}
	return sess.AccessToken, nil
}
