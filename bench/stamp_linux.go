package bench

import (
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stampedConn reads a TCP socket with recvmsg and remembers when the
// kernel received the bytes of the last read (SO_TIMESTAMPNS): the load
// tool then tells the hub's delay from its own scheduling delay. Only the
// reading goroutine uses last.
type stampedConn struct {
	net.Conn
	raw  syscall.RawConn
	oob  [64]byte
	last time.Time
}

func stamped(c net.Conn, tcp *net.TCPConn) net.Conn {
	raw, err := tcp.SyscallConn()
	if err != nil {
		return c
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return c
	}
	return &stampedConn{Conn: c, raw: raw}
}

func (c *stampedConn) Read(p []byte) (int, error) {
	var n, oobn int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), p, c.oob[:], 0)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN // else wait until readable
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	if msgs, perr := unix.ParseSocketControlMessage(c.oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
				ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				c.last = time.Unix(ts.Unix())
			}
		}
	}
	return n, nil
}

// receivedAt is when the kernel received the last bytes read, or zero: not
// a stamped socket, or bytes that came without a timestamp (the kernel
// switches receive timestamps on system-wide a few milliseconds after the
// first socket asks).
func receivedAt(c net.Conn) time.Time {
	if s, ok := c.(*stampedConn); ok {
		return s.last
	}
	return time.Time{}
}
