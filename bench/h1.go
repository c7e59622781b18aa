package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1Pool is a small HTTP/1.1 keep-alive client for plain-http hubs: the
// caller's goroutine writes the request and reads the response itself.
// net/http's client hands every request to a writer goroutine and every
// response from a reader goroutine of the connection, CPU the tool takes
// from the hub it measures on the cores they share. This does the same job
// with no hand-off: the hub sees ordinary HTTP/1.1 requests. https hubs
// keep using net/http.
type h1Pool struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by host:port, most recently used last
	closed bool                 // no more pooling: a returned connection is closed
}

type h1Conn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it was last put back
}

// h1MaxIdle is how long an idle connection is reused: well under the
// hub's 120 s idle timeout, so a request never races the hub closing it.
const h1MaxIdle = 30 * time.Second

// h1MaxBody bounds a response body the tool reads.
const h1MaxBody = 1 << 20

// h1Response is what call needs of a response.
type h1Response struct {
	status int
	body   []byte
}

// do sends one request to host (host:port) for path (with its query) and
// reads the whole response. ctx bounds it; body, if not nil, is sent as
// JSON.
func (p *h1Pool) do(ctx context.Context, method, host, path, bearer string, body []byte) (h1Response, error) {
	if err := ctx.Err(); err != nil {
		return h1Response{}, err
	}
	hc, err := p.get(ctx, host)
	if err != nil {
		return h1Response{}, err
	}
	return p.send(ctx, hc, method, host, path, bearer, body)
}

// send is do on the connection hc (from get): it is put back in the pool
// after a kept-alive response, and closed otherwise.
func (p *h1Pool) send(ctx context.Context, hc *h1Conn, method, host, path, bearer string, body []byte) (h1Response, error) {
	// The connection's deadline follows ctx, so that a cancelled run or a
	// flow past its timeout never waits on the socket.
	if dl, ok := ctx.Deadline(); ok {
		hc.c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { hc.c.SetDeadline(time.Unix(1, 0)) })
	res, keep, err := hc.roundTrip(method, host, path, bearer, body)
	stopped := stop() // false: ctx ended and forced the deadline
	if err != nil {
		hc.c.Close()
		if ctx.Err() != nil {
			err = ctx.Err() // the deadline was ours: say why
		} else if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			err = context.DeadlineExceeded // ctx's timer has not fired yet
		}
		return h1Response{}, err
	}
	if !keep || !stopped {
		hc.c.Close()
		return res, nil
	}
	hc.c.SetDeadline(time.Time{})
	p.put(host, hc)
	return res, nil
}

func (hc *h1Conn) roundTrip(method, host, path, bearer string, body []byte) (res h1Response, keep bool, err error) {
	w := hc.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\nUser-Agent: loginhub-bench\r\n")
	if bearer != "" {
		w.WriteString("Authorization: Bearer ")
		w.WriteString(bearer)
		w.WriteString("\r\n")
	}
	if body != nil {
		w.WriteString("Content-Type: application/json\r\n")
	}
	if body != nil || method != http.MethodGet {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return res, false, err
	}
	resp, err := http.ReadResponse(hc.br, nil)
	if err != nil {
		return res, false, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, h1MaxBody))
	resp.Body.Close()
	if err != nil {
		return res, false, err
	}
	// A body longer than the limit leaves bytes on the connection.
	keep = !resp.Close && (resp.ContentLength < 0 || resp.ContentLength <= h1MaxBody)
	return h1Response{status: resp.StatusCode, body: data}, keep, nil
}

func (p *h1Pool) get(ctx context.Context, host string) (*h1Conn, error) {
	now := time.Now()
	p.mu.Lock()
	for conns := p.idle[host]; len(conns) > 0; conns = p.idle[host] {
		hc := conns[len(conns)-1]
		p.idle[host] = conns[:len(conns)-1]
		if now.Sub(hc.used) < h1MaxIdle {
			p.mu.Unlock()
			return hc, nil
		}
		hc.c.Close() // idle too long: the hub may be closing it
	}
	p.mu.Unlock()
	c, err := p.dial(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return &h1Conn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 2<<10)}, nil
}

func (p *h1Pool) put(host string, hc *h1Conn) {
	hc.used = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		hc.c.Close()
		return
	}
	if p.idle == nil {
		p.idle = make(map[string][]*h1Conn)
	}
	p.idle[host] = append(p.idle[host], hc)
	p.mu.Unlock()
}

// closeIdle closes the pooled connections; with final, connections in use
// are closed when they come back.
func (p *h1Pool) closeIdle(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if final {
		p.closed = true
	}
	p.mu.Unlock()
	for _, conns := range idle {
		for _, hc := range conns {
			hc.c.Close()
		}
	}
}

// splitHTTPURL splits a plain-http URL into host:port and request path;
// ok is false for anything else (https goes through net/http).
func splitHTTPURL(raw string) (host, path string, ok bool) {
	rest, found := strings.CutPrefix(raw, "http://")
	if !found {
		return "", "", false
	}
	host, path = rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if !strings.Contains(host, ":") || strings.HasSuffix(host, "]") {
		host += ":80"
	}
	return host, path, true
}
