package hub

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/handlers"
)

// benchHub is a Hub served over real TCP for benchmarks, polling its
// sockets or reading each with a goroutine.
func benchHub(b *testing.B, goroutines bool) (*Hub, *fakeTickets, string) {
	b.Helper()
	tickets := newFakeTickets()
	broker := &MemoryBroker{}
	tickets.publish = func(id string, v uint64) { broker.Publish(id, v) }
	h := New(Config{
		Tickets:            tickets,
		Broker:             broker,
		CheckOrigin:        func(origin string) bool { return origin == benchOrigin },
		ClientIP:           handlers.ClientIPs{}.ClientIP,
		Now:                tickets.Now,
		GoroutinePerSocket: goroutines,
	})
	srv := httptest.NewServer(h)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.Run(ctx) }()
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		if err := h.Shutdown(sctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		srv.Close()
		cancel()
		<-runDone
	})
	return h, tickets, srv.Listener.Addr().String()
}

// benchOrigin is the page the raw clients say they come from, the one
// origin the benchmark hub allows.
const benchOrigin = "http://bench.test"

// rawClient is the smallest WebSocket client: the TCP connection and
// nothing else, so that what an idle socket costs in the process is the
// hub's side, plus a *net.TCPConn that is the same for every build.
type rawClient struct{ nc net.Conn }

// dialRaw opens a WebSocket to addr with a fixed handshake.
func dialRaw(b *testing.B, addr string) *rawClient {
	b.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(waitFor))
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: " + benchOrigin + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		b.Fatal(err)
	}
	// The hub writes nothing after the 101 until it is asked: reading the
	// head byte by byte leaves no frame behind.
	br := bufio.NewReaderSize(nc, 16)
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		c, err := br.ReadByte()
		if err != nil {
			b.Fatalf("handshake: %v (%q)", err, head)
		}
		head = append(head, c)
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		b.Fatalf("handshake answered %q", head)
	}
	_ = nc.SetDeadline(time.Time{})
	return &rawClient{nc: nc}
}

// send writes one masked client frame.
func (c *rawClient) send(b *testing.B, op byte, payload string) {
	b.Helper()
	var buf [256]byte
	f := append(buf[:0], 0x80|op, 0x80|byte(len(payload)), 0, 0, 0, 0) // a zero masking key
	f = append(f, payload...)
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := c.nc.Write(f); err != nil {
		b.Fatal(err)
	}
}

// expect reads one unmasked server frame (payload under 126 bytes, or
// 16-bit length) and checks its opcode and that its payload contains want.
func (c *rawClient) expect(b *testing.B, op byte, want string) {
	b.Helper()
	var buf [512]byte
	_ = c.nc.SetReadDeadline(time.Now().Add(waitFor))
	n := 0
	for {
		m, err := c.nc.Read(buf[n:])
		n += m
		if n >= 2 {
			hl, l := 2, int(buf[1]&0x7f)
			if l == 126 && n >= 4 {
				hl, l = 4, int(buf[2])<<8|int(buf[3])
			}
			if l != 126 && n >= hl+l {
				if buf[0] != 0x80|op || !strings.Contains(string(buf[hl:hl+l]), want) || n != hl+l {
					b.Fatalf("read % x, want opcode %#x with %q", buf[:n], op, want)
				}
				return
			}
		}
		if err != nil {
			b.Fatalf("reading a frame: %v", err)
		}
	}
}

// BenchmarkIdleSocket opens sockets that each watch a ticket and then wait,
// as a desktop does, and reports the heap each one holds in the process
// (the hub's side and a bare client TCP connection) once they are idle.
// Run it with -benchtime 1x: every op opens and closes 2 000 sockets.
func BenchmarkIdleSocket(b *testing.B) {
	const n = 2000
	benchModes(b, func(b *testing.B, goroutines bool) {
		h, tickets, addr := benchHub(b, goroutines)
		for i := range n {
			tickets.add(fmt.Sprintf("idle%04d", i))
		}
		extra := 0 // goroutines each idle socket keeps
		if goroutines {
			extra = n
		}
		var perSocket, stackPerSocket float64
		ops := 0
		clients := make([]*rawClient, n)
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			base := runtime.NumGoroutine()
			for i := range clients {
				clients[i] = dialRaw(b, addr)
				id := fmt.Sprintf("idle%04d", i)
				clients[i].send(b, 0x1, `{"op":"watch","id":"`+id+`","secret":"secret-`+id+`"}`)
			}
			for i, c := range clients {
				c.expect(b, 0x1, fmt.Sprintf(`"id":"idle%04d"`, i))
			}
			// The handlers and writers that served the watches end by
			// themselves; wait for them, with a deadline.
			deadline := time.Now().Add(waitFor)
			for runtime.NumGoroutine() > base+extra+5 {
				if time.Now().After(deadline) {
					b.Fatalf("%d goroutines with %d idle sockets (%d before)", runtime.NumGoroutine(), n, base)
				}
				runtime.Gosched()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perSocket += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			stackPerSocket += float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
			ops++
			b.StopTimer()
			for i, c := range clients {
				c.nc.Close()
				clients[i] = nil
			}
			for h.conns.len() > 0 {
				if time.Now().After(deadline) {
					b.Fatalf("%d sockets still open", h.conns.len())
				}
				runtime.Gosched()
			}
			b.StartTimer()
		}
		b.ReportMetric(perSocket/float64(ops), "heapB/socket")
		b.ReportMetric(stackPerSocket/float64(ops), "stackB/socket")
	})
}

// BenchmarkPing is one client ping answered with a pong on an otherwise
// idle, watching socket: the hub's read and write paths for one frame
// each (the client is a bare TCP connection).
func BenchmarkPing(b *testing.B) {
	benchModes(b, func(b *testing.B, goroutines bool) {
		_, tickets, addr := benchHub(b, goroutines)
		tickets.add("t1")
		c := dialRaw(b, addr)
		defer c.nc.Close()
		c.send(b, 0x1, `{"op":"watch","id":"t1","secret":"secret-t1"}`)
		c.expect(b, 0x1, `"id":"t1"`)
		b.ReportAllocs()
		for b.Loop() {
			c.send(b, 0x9, "ping-payload")
			c.expect(b, 0xA, "ping-payload")
		}
	})
}

// benchModes runs f once per way of reading sockets, as forModes does for
// tests: polled (epoll, on Linux) and a goroutine per socket.
func benchModes(b *testing.B, f func(b *testing.B, goroutines bool)) {
	b.Run("epoll", func(b *testing.B) { f(b, false) })
	b.Run("goroutines", func(b *testing.B) { f(b, true) })
}
