//go:build !linux

package hub

import (
	"errors"
	"net"
)

// Without epoll every socket has a reader goroutine; the poller's methods
// are never called.
type poller struct{}

type pollEvent struct{}

const maxEvents = 1

var errPollerClosed = errors.New("hub: poller closed")

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func pollable(net.Conn) bool { return false }

func (p *poller) add(net.Conn, uint64) error   { return errors.ErrUnsupported }
func (p *poller) rearm(net.Conn, uint64) error { return errors.ErrUnsupported }
func (p *poller) remove(net.Conn)              {}
func (p *poller) wake()                        {}
func (p *poller) close()                       {}

func (p *poller) wait([]pollEvent, []uint64) ([]uint64, error) { return nil, errPollerClosed }
