package hub

import (
	"bytes"
	"net"
	"time"

	"github.com/loginhub/loginhub/hub/ws"
)

// Reading client frames. Whoever holds a socket's reader role (see
// readerState) reads it, decoding with ws.Conn.ReadFrame over a buffer
// borrowed from Hub.readBufs only while bytes are being handled:
//
//   - a polled socket between reads has no goroutine; the poller starts
//     readReady when it becomes readable, which handles what came (a frame
//     already started must arrive whole within readSlack) and gives the
//     socket back to the poller;
//   - other sockets keep readLoop, blocking between frames with the read
//     deadline pushed out by 2*PingInterval+5s at each frame, as long as
//     the socket lives;
//   - a polled socket whose close frame went out is read by readLoop too,
//     until the client answers or closeGrace passes.
//
// Handling a message runs deep (JSON, authorization, store and broker
// calls), so it happens on the short-lived handler goroutine (deliver): the
// reader of a socket that keeps one stays shallow, and so does its stack.

// readReady is the short-lived reader of a polled socket that the poller
// found readable. The caller holds the reader role.
func (c *conn) readReady() {
	nc := c.sock.NetConn()
	// The socket is readable, so this read returns at once: no deadline
	// (a timer set and cleared per message costs more than the read). One
	// is set only if a frame arrives incomplete and the rest must be
	// waited for (readFrom, lazy).
	buf := c.h.readBufs.Get().(*[readBufSize]byte)
	n, err := nc.Read(buf[:])
	armed := false
	if n > 0 {
		var ferr error
		if armed, ferr = c.readFrom(nc, buf[:], n, readSlack, true); ferr != nil {
			err = ferr
		}
	}
	c.h.readBufs.Put(buf)
	if err != nil {
		c.endRead(err)
		return
	}
	c.releaseReader(armed)
}

// releaseReader gives a polled socket back to the poller after readReady,
// unless it is closing. armed says readReady set a read deadline.
func (c *conn) releaseReader(armed bool) {
	c.mu.Lock()
	switch {
	case c.dead:
		// Closed while this goroutine read: ending it is ours.
		c.mu.Unlock()
		c.endRead(net.ErrClosed)
		return
	case c.closeSent:
		// Our close frame went out while this goroutine read: wait for the
		// answer here.
		c.mu.Unlock()
		c.unregister()
		c.readLoop()
		return
	case c.closed:
		// A close frame is queued. Its writer takes the reader role back
		// once it is written (or has failed), so nothing reads meanwhile.
		c.reader = readerIdle
		c.mu.Unlock()
		return
	}
	if c.h.pollFailed.Load() {
		// Checked under c.mu: unpoll, which sets it first, takes the role
		// of every idle socket after.
		c.mu.Unlock()
		c.readLoop()
		return
	}
	if armed {
		// No deadline timer stays armed on an idle socket.
		_ = c.sock.NetConn().SetReadDeadline(time.Time{})
	}
	// Idle before rearming: an event right after rearm must find the role
	// free, or it would be lost (one-shot).
	c.reader = readerIdle
	c.mu.Unlock()
	if err := c.h.poll.Rearm(c.sock.NetConn(), c.id); err != nil {
		// The socket was closed meanwhile (its closer found the role free
		// and ends it), or the poller is gone: read without it.
		c.mu.Lock()
		took := c.takeReaderLocked()
		c.mu.Unlock()
		if took {
			c.readLoop()
		}
	}
}

// readLoop reads the socket until it ends, blocking between frames, then
// ends it. The caller holds the reader role.
func (c *conn) readLoop() {
	c.endRead(c.readBlocking(c.h.readTimeout))
}

func (c *conn) readBlocking(d time.Duration) error {
	nc := c.sock.NetConn()
	c.setReadDeadline(d)
	first := make([]byte, 1) // waiting for a frame holds no read buffer
	for {
		n, err := nc.Read(first)
		if n == 1 {
			buf := c.h.readBufs.Get().(*[readBufSize]byte)
			buf[0] = first[0]
			_, ferr := c.readFrom(nc, buf[:], 1, d, false)
			c.h.readBufs.Put(buf)
			if ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
}

// readFrom handles the frames in buf[:w] and, while one is incomplete,
// reads more into buf. It returns nil once every byte read is handled.
// The read deadline gives the client d to finish a frame (and, for
// readLoop, to send the next): pushed out after each batch of frames, or,
// when lazy (readReady), set only before waiting for the rest of an
// incomplete frame; armed reports whether it was set.
func (c *conn) readFrom(nc net.Conn, buf []byte, w int, d time.Duration, lazy bool) (armed bool, err error) {
	var rerr error
	for {
		used, frames, ferr := c.handleFrames(buf[:w])
		if frames > 0 {
			c.heardFrom()
			if !lazy {
				c.setReadDeadline(d)
			}
		}
		if ferr != nil {
			return armed, ferr
		}
		w = copy(buf, buf[used:w])
		if rerr != nil {
			return armed, rerr
		}
		if w == 0 {
			return armed, nil
		}
		// A frame is incomplete; it fits in buf (readBufSize).
		if lazy && !armed {
			c.setReadDeadline(d)
			armed = true
		}
		var n int
		n, rerr = nc.Read(buf[w:])
		w += n
	}
}

// handleFrames handles the whole frames at the start of b and returns the
// bytes they took and how many there were; a frame not yet complete is
// left, with the bytes after it.
func (c *conn) handleFrames(b []byte) (used, frames int, err error) {
	for {
		n, op, data, err := c.sock.ReadFrame(b[used:])
		if n > 0 {
			used += n
			frames++
		}
		if err != nil || n == 0 {
			return used, frames, err
		}
		switch op {
		case ws.OpText, ws.OpBinary:
			c.onMessage(op == ws.OpText, data)
		case ws.OpPing:
			c.onPing(data)
		}
	}
}

// heardFrom records a sign of life from the client.
func (c *conn) heardFrom() {
	c.heard.Store(c.h.cfg.Now().UnixNano())
	c.unanswered.Store(0)
}

// setReadDeadline gives the reader d from now, unless our close frame went
// out (the writer set closeGrace then).
func (c *conn) setReadDeadline(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closeSent {
		_ = c.sock.NetConn().SetReadDeadline(time.Now().Add(d))
	}
}

// onMessage is a whole client message.
func (c *conn) onMessage(text bool, data []byte) {
	if !text {
		c.sendError("", errBinary)
		return
	}
	c.deliver(bytes.Clone(data))
}

// onPing answers a client's ping after what is already queued.
func (c *conn) onPing(payload []byte) {
	c.enqueue(outMsg{kind: msgPong, data: bytes.Clone(payload)})
}

// endRead ends the socket for its reader after err. A protocol violation
// gets a close frame with its code; the client's close frame is answered
// with its own code (unless ours went out first).
func (c *conn) endRead(err error) {
	if ce, ok := err.(*ws.CloseError); ok {
		c.mu.Lock()
		sent := c.closeSent
		c.closed, c.closeSent = true, true
		c.mu.Unlock()
		if !sent {
			reason := ce.Reason
			if ce.Peer {
				reason = ""
			}
			_ = c.sock.WriteClose(ce.Code, reason, time.Now().Add(killWait))
		}
	}
	c.unregister()
	c.cleanup()
	c.h.log.Debug("hub: socket closed", "remote", c.remote(), "err", err)
}

// unregister takes a polled socket out of the poller: before its descriptor
// is closed, which cleanup does.
func (c *conn) unregister() {
	if c.polled {
		c.h.poll.Remove(c.sock.NetConn())
	}
}

// takeReaderLocked gives the caller the reader role if no goroutine holds
// it: only a polled socket between reads has none.
func (c *conn) takeReaderLocked() bool {
	if c.reader == readerIdle {
		c.reader = readerBusy
		return true
	}
	return false
}

// ready is the poller's event for a polled socket: it starts a short-lived
// reader unless a goroutine holds the role (an event that raced with a
// closer). Called only from the poll loop, a task.
func (c *conn) ready() {
	c.mu.Lock()
	took := c.takeReaderLocked()
	c.mu.Unlock()
	if took {
		c.h.goFrom(c.readReady)
	}
}
