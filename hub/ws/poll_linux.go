//go:build linux

package ws

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller is an epoll instance. Idle sockets are registered in it one-shot:
// when one becomes readable, Wait reports it once, and it stays disarmed
// until Rearm. Sockets are identified by a token of the caller's, never by
// file descriptor number, which the kernel reuses as soon as a socket is
// closed. Its methods are safe for concurrent use, but only one goroutine
// may Wait.
//
// Every epoll_ctl runs inside the socket's syscall.RawConn.Control, which
// keeps the descriptor open for the call: it can never reach another
// socket that reused the number. A socket closed while registered leaves
// the epoll set by itself.
type Poller struct {
	// mu is read-held by every epoll_ctl and Wake, and held by Close, so
	// that no call reaches a descriptor number reused after Close. Wait
	// does not hold it while it waits: the os.File guards the epoll fd.
	mu     sync.RWMutex
	closed bool
	epfd   int
	wakefd int // an eventfd in the set: writing to it wakes Wait
	// file wraps epfd (non-blocking) so that Wait parks in Go's own
	// netpoller until the epoll set has events, instead of blocking an OS
	// thread in epoll_wait: the scheduler then runs the waiting goroutine
	// like any goroutine woken by network I/O.
	file *os.File
	raw  syscall.RawConn
	evs  []unix.EpollEvent // Wait's
}

const (
	wakeToken  = 0 // tokens from callers are never 0
	pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
	maxEvents  = 256
)

// NewPoller returns a Poller. Close releases it.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, wakeToken)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		unix.Close(wakefd)
		return nil, err
	}
	return &Poller{epfd: epfd, wakefd: wakefd, file: file, raw: raw, evs: make([]unix.EpollEvent, maxEvents)}, nil
}

// The 64 bits of epoll_data are Fd and Pad on every Linux architecture.
func setToken(ev *unix.EpollEvent, t uint64) {
	ev.Fd = int32(uint32(t))
	ev.Pad = int32(uint32(t >> 32))
}

func eventToken(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// rawConn returns the socket under nc if the poller can watch it: a plain
// TCP or Unix socket, with no buffering of its own (a *tls.Conn is not).
func rawConn(nc net.Conn) (syscall.RawConn, bool) {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// Pollable reports whether a Poller can watch nc: a plain TCP or Unix
// socket (a *tls.Conn buffers what it reads, so it is not).
func Pollable(nc net.Conn) bool {
	_, ok := rawConn(nc)
	return ok
}

// Add registers nc, armed, with token (not 0). It fails if nc is not
// Pollable, is closed, or the Poller is closed (net.ErrClosed).
func (p *Poller) Add(nc net.Conn, token uint64) error {
	return p.ctl(unix.EPOLL_CTL_ADD, nc, token)
}

// Rearm arms nc again after Wait reported it.
func (p *Poller) Rearm(nc net.Conn, token uint64) error {
	return p.ctl(unix.EPOLL_CTL_MOD, nc, token)
}

// Remove unregisters nc before it is closed; it is a no-op when nc is not
// registered or already closed.
func (p *Poller) Remove(nc net.Conn) {
	_ = p.ctl(unix.EPOLL_CTL_DEL, nc, 0)
}

func (p *Poller) ctl(op int, nc net.Conn, token uint64) error {
	rc, ok := rawConn(nc)
	if !ok {
		return errors.New("ws: not a pollable socket")
	}
	if token == wakeToken && op != unix.EPOLL_CTL_DEL {
		return errors.New("ws: poll token 0 is reserved")
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return net.ErrClosed
	}
	var opErr error
	err := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: pollEvents}
		setToken(&ev, token)
		opErr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err // the socket is closed
	}
	if opErr != nil {
		return os.NewSyscallError("epoll_ctl", opErr)
	}
	return nil
}

// Wait waits until registered sockets are readable (or closed by the
// peer) and returns their tokens in ids[:0]. Wake makes it return early,
// maybe with no tokens. Once the Poller is closed it returns
// net.ErrClosed; any other error means it no longer works. It parks in
// Go's netpoller, not in epoll_wait: each try is an epoll_wait that does
// not block.
func (p *Poller) Wait(ids []uint64) ([]uint64, error) {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return ids[:0], net.ErrClosed
	}
	evs := p.evs
	var n int
	var waitErr error
	err := p.raw.Read(func(fd uintptr) bool {
		n, waitErr = unix.EpollWait(int(fd), evs, 0)
		// Done when there are events, or on a real error; an interrupted
		// try counts as done with none (the caller asks again).
		return n > 0 || waitErr != nil
	})
	switch {
	case err != nil:
		return ids[:0], net.ErrClosed // the file was closed
	case waitErr == unix.EINTR:
		return ids[:0], nil
	case waitErr != nil:
		return ids[:0], os.NewSyscallError("epoll_wait", waitErr)
	}
	ids = ids[:0]
	for i := range evs[:n] {
		t := eventToken(&evs[i])
		if t == wakeToken {
			var buf [8]byte
			_, _ = unix.Read(p.wakefd, buf[:]) // reset the eventfd
			continue
		}
		ids = append(ids, t)
	}
	return ids, nil
}

// Wake makes a Wait in progress (or the next one) return.
func (p *Poller) Wake() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	var one [8]byte // an eventfd counter is a host-endian uint64
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.wakefd, one[:])
}

// Close releases the epoll instance; registered sockets stay open. It is
// safe to call more than once, and while Wait runs (it wakes it first).
func (p *Poller) Close() {
	p.Wake()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.file.Close() // closes epfd once no wait is inside epoll_wait, and ends a parked wait
	unix.Close(p.wakefd)
}
