package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// createTimeout bounds one ticket creation (dial included).
const createTimeout = 10 * time.Second

// createTarget is how one node's ticket creations are sent: a fixed
// HTTP/1.1 request on a kept-alive connection.
type createTarget struct {
	addr string      // host:port to dial
	tls  *tls.Config // nil for http://
	req  []byte
}

func newCreateTarget(base string) (createTarget, error) {
	u, err := url.Parse(base)
	if err != nil {
		return createTarget{}, err
	}
	t := createTarget{}
	t.addr, t.tls = dialAddr(u)
	t.req = fmt.Appendf(nil, "POST %s/v1/qr/tickets HTTP/1.1\r\nHost: %s\r\nUser-Agent: loginhub-bench\r\nContent-Length: 0\r\n\r\n",
		u.EscapedPath(), u.Host)
	return t, nil
}

// createPart is one connection's share of a create run.
type createPart struct {
	started, ok, cancelled int
	errors                 map[string]int
	hist                   histogram
}

// runCreates creates tickets on --concurrency connections, each one
// request after the other, until --flows are started (or, with
// --flows 0, until the run's --duration). Connection j goes to node
// j mod n from source address j.
func (w *localWorker) runCreates(ctx context.Context) (flowReport, error) {
	rep := flowReport{Flows: w.cfg.flows, Errors: map[string]int{}}
	targets := make([]createTarget, w.cfg.nodes())
	for k, base := range w.cfg.baseURLs {
		t, err := newCreateTarget(base)
		if err != nil {
			return rep, err
		}
		targets[k] = t
	}
	var next atomic.Int64
	take := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if w.cfg.untilDuration {
			return time.Now().Before(w.cfg.endAt)
		}
		return next.Add(1) <= int64(w.cfg.flows)
	}
	conns := w.cfg.concurrency
	if !w.cfg.untilDuration {
		conns = min(conns, w.cfg.flows)
	}
	parts := make([]createPart, conns)
	var wg sync.WaitGroup
	for j := range parts {
		wg.Go(func() {
			c := &createConn{src: w.source(j), target: targets[w.cfg.desktopNode(j)]}
			c.loop(ctx, &parts[j], take)
		})
	}
	wg.Wait()
	for _, p := range parts {
		rep.Started += p.started
		rep.OK += p.ok
		rep.Cancelled += p.cancelled
		mergeCounts(rep.Errors, p.errors)
		rep.Create.merge(p.hist)
	}
	rep.Create.trim()
	return rep, nil
}

// createConn is one kept-alive connection that creates tickets.
type createConn struct {
	src    *source
	target createTarget
	body   bytes.Buffer

	mu sync.Mutex // guards c against the end of the run
	c  net.Conn
	br *bufio.Reader
}

func (cc *createConn) loop(ctx context.Context, p *createPart, take func() bool) {
	p.errors = map[string]int{}
	// The run ending unblocks a request in flight.
	stop := context.AfterFunc(ctx, func() {
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if cc.c != nil {
			cc.c.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	defer cc.drop()
	for take() {
		p.started++
		t0 := time.Now()
		kind := cc.create(ctx, t0)
		switch {
		case kind == "":
			p.ok++
			p.hist.add(time.Since(t0))
		case ctx.Err() != nil:
			p.cancelled++
		default:
			p.errors["create:"+kind]++
			if strings.HasPrefix(kind, "dial_") || strings.HasPrefix(kind, "tls_") {
				sleepCtx(ctx, 10*time.Millisecond) // a node that refuses: do not spin
			}
		}
	}
}

// create makes one ticket; it returns "" or what went wrong.
func (cc *createConn) create(ctx context.Context, t0 time.Time) string {
	if cc.c == nil {
		if kind := cc.dial(ctx); kind != "" {
			return kind
		}
	}
	cc.src.reqs.Add(1)
	cc.c.SetDeadline(t0.Add(createTimeout))
	if ctx.Err() != nil { // it may just have set the deadline that ends it
		return netKind(ctx.Err())
	}
	if _, err := cc.c.Write(cc.target.req); err != nil {
		cc.drop()
		return netKind(err)
	}
	resp, err := http.ReadResponse(cc.br, nil)
	if err != nil {
		cc.drop()
		return netKind(err)
	}
	cc.body.Reset()
	_, err = cc.body.ReadFrom(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		cc.drop()
		return netKind(err)
	}
	if resp.Close {
		cc.drop()
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(cc.body.Bytes(), &e)
		kind := fmt.Sprint(resp.StatusCode)
		if e.Error != "" {
			kind += "_" + e.Error
		}
		return kind
	}
	if !bytes.Contains(cc.body.Bytes(), []byte(`"watch_secret":"`)) {
		return "bad_json"
	}
	return ""
}

func (cc *createConn) dial(ctx context.Context) string {
	dctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	c, err := cc.src.dial(dctx, "tcp", cc.target.addr)
	if err != nil {
		return "dial_" + netKind(err)
	}
	if cc.target.tls != nil {
		tc := tls.Client(c, cc.target.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			c.Close()
			return "tls_" + netKind(err)
		}
		c = tc
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if ctx.Err() != nil {
		c.Close()
		return "dial_" + netKind(ctx.Err())
	}
	cc.c = c
	if cc.br == nil {
		cc.br = bufio.NewReaderSize(c, 4<<10)
	} else {
		cc.br.Reset(c)
	}
	return ""
}

// drop closes the connection; the next request dials again.
func (cc *createConn) drop() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c != nil {
		cc.c.Close()
		cc.c = nil
	}
}
