package hub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub/ws"
)

// wsFrame is a frame as a client sends it (masked), final or not.
func wsFrame(fin bool, op byte, payload string) []byte {
	f := ws.NewConn(nil, ws.Client, 0).AppendFrame(nil, op, []byte(payload))
	if !fin {
		f[0] &^= 0x80
	}
	return f
}

func closeFrame(code int, reason string) []byte {
	return wsFrame(true, ws.OpClose, string(binary.BigEndian.AppendUint16(nil, uint16(code)))+reason)
}

func cat(frames ...[]byte) []byte { return slices.Concat(frames...) }

// writeRaw writes bytes to the socket under the client's gorilla Conn, one
// write per chunk.
func (c *client) writeRaw(chunks ...[]byte) {
	c.t.Helper()
	nc := c.ws.UnderlyingConn()
	_ = nc.SetWriteDeadline(time.Now().Add(waitFor))
	for _, b := range chunks {
		if _, err := nc.Write(b); err != nil {
			c.t.Fatalf("writing raw bytes: %v", err)
		}
	}
}

// expectClose reads until the hub's close frame and checks its code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	for {
		ev, err := c.read()
		if err == nil {
			c.t.Fatalf("got %+v, want close %d", ev, code)
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			c.t.Fatalf("read: %v, want close %d", err, code)
		}
		return
	}
}

func bytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// TestClientFrames sends raw client frames over a real socket.
func TestClientFrames(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		logs := make(chan slog.Record, 100)
		e := newEnv(t, mode, func(c *Config) { c.Logger = slog.New(logTap{logs}) })
		e.tickets.add("t1")
		watch := `{"op":"watch","id":"t1","secret":"secret-t1"}`

		t.Run("unmasked frame", func(t *testing.T) {
			c := e.dial()
			c.writeRaw([]byte{0x81, 2, '{', '}'}) // no mask bit, no key
			c.expectClose(websocket.CloseProtocolError)
		})
		t.Run("fragmented text with an interleaved ping", func(t *testing.T) {
			c := e.dial()
			var mu sync.Mutex
			var pongs []string
			c.ws.SetPongHandler(func(s string) error {
				mu.Lock()
				defer mu.Unlock()
				pongs = append(pongs, s)
				return nil
			})
			c.writeRaw(wsFrame(false, ws.OpText, watch[:10]), wsFrame(true, ws.OpPing, "p1"),
				wsFrame(false, ws.OpContinuation, watch[10:20]), wsFrame(true, ws.OpPing, "p2"),
				wsFrame(true, ws.OpContinuation, watch[20:]))
			c.expectState("t1", 1, authcore.StatePending)
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"p1", "p2"}; strings.Join(pongs, ",") != strings.Join(want, ",") {
				t.Errorf("pongs before the state event: %q, want %q", pongs, want)
			}
		})
		t.Run("frame split into single bytes", func(t *testing.T) {
			c := e.dial()
			c.writeRaw(bytewise(cat(wsFrame(false, ws.OpText, watch[:7]), wsFrame(true, ws.OpPing, ""),
				wsFrame(true, ws.OpContinuation, watch[7:])))...)
			c.expectState("t1", 1, authcore.StatePending)
		})
		t.Run("more than a read buffer at once", func(t *testing.T) {
			c := e.dial()
			const n = 6 // under maxInbox
			var all []byte
			for i := range n {
				msg := fmt.Sprintf(`{"op":"x%d","pad":%q}`, i, strings.Repeat("p", 1500))
				all = append(all, wsFrame(true, ws.OpText, msg)...)
			}
			if len(all) <= readBufSize {
				t.Fatalf("%d bytes fit in one read buffer", len(all))
			}
			c.writeRaw(all)
			for range n {
				c.expectError("", "invalid_request")
			}
			c.watch("t1", 0)
			c.expectState("t1", 1, authcore.StatePending)
		})
		t.Run("oversize fragmented message", func(t *testing.T) {
			c := e.dial()
			c.writeRaw(wsFrame(false, ws.OpText, strings.Repeat(" ", readLimit-10)),
				wsFrame(true, ws.OpContinuation, strings.Repeat(" ", 11)))
			c.expectClose(websocket.CloseMessageTooBig)
		})
		t.Run("bad UTF-8", func(t *testing.T) {
			c := e.dial()
			c.writeRaw(wsFrame(true, ws.OpText, "{\"op\":\"watch\",\"id\":\"\xff\"}"))
			c.expectClose(websocket.CloseInvalidFramePayloadData)
		})
		t.Run("binary", func(t *testing.T) {
			c := e.dial()
			c.writeRaw(wsFrame(true, ws.OpBinary, watch))
			c.expectError("", "invalid_request")
			c.watch("t1", 0) // the socket goes on
			c.expectState("t1", 1, authcore.StatePending)
		})
		t.Run("close handshake", func(t *testing.T) {
			e.tickets.add("t2")
			c := e.dial()
			c.watch("t2", 0)
			c.expectState("t2", 1, authcore.StatePending)
			c.writeRaw(closeFrame(websocket.CloseNormalClosure, "bye"))
			c.expectClose(websocket.CloseNormalClosure) // the echo
			waitLogFrom(t, logs, "hub: socket closed", c)
			if e.hub.held("t2") != nil {
				t.Error("hub holds the ticket after the close handshake")
			}
		})
	})
}

// TestSilentSocketDropped: a client that stops answering pings is dropped
// after 2*PingInterval+5s by the hub's clock, one that answers is not.
func TestSilentSocketDropped(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		logs := make(chan slog.Record, 100)
		// The sockets watch nothing: IdleTimeout must not close them first.
		e := newEnv(t, mode, func(c *Config) { c.Logger, c.IdleTimeout = slog.New(logTap{logs}), time.Hour })
		dead, live := e.dial(), e.dial()
		for _, c := range []*client{dead, live} {
			c.barrier() // barrier: the socket is registered
		}
		// From here on dead never reads, so it never answers a ping.
		pinged := make(chan struct{}, 1)
		live.ws.SetPingHandler(func(s string) error {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return live.ws.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(waitFor))
		})
		answer := func() {
			t.Helper()
			// Reading the next event processes the ping before it.
			live.barrier()
			select {
			case <-pinged:
			default:
				t.Fatal("live client was not pinged")
			}
		}

		at := func(d time.Duration) {
			now := t0.Add(d)
			e.tickets.setNow(now)
			e.hub.sweep(now)
		}
		at(defaultPingInterval) // first ping
		answer()
		at(2 * defaultPingInterval) // second ping
		answer()
		at(2*defaultPingInterval + readSlack - time.Second) // not silent for long enough yet
		at(2*defaultPingInterval + readSlack)
		r := waitLog(t, logs, "hub: dropping silent socket")
		if got, want := logRemote(r), dead.ws.LocalAddr().String(); got != want {
			t.Errorf("dropped %s, want the silent client %s", got, want)
		}
		if _, err := dead.read(); err == nil || isTimeout(err) {
			t.Errorf("silent client read: %v, want the connection closed", err)
		}
		live.barrier()
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// logRemote is the "remote" attribute of a log record.
func logRemote(r slog.Record) string {
	var remote string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "remote" {
			remote = a.Value.String()
		}
		return true
	})
	return remote
}

// waitLogFrom waits for a log record with message msg about c's socket.
func waitLogFrom(t *testing.T, ch chan slog.Record, msg string, c *client) {
	t.Helper()
	want := c.ws.LocalAddr().String()
	deadline := time.After(waitFor)
	for {
		select {
		case r := <-ch:
			if r.Message == msg && logRemote(r) == want {
				return
			}
		case <-deadline:
			t.Fatalf("no log %q about %s within %v", msg, want, waitFor)
		}
	}
}
