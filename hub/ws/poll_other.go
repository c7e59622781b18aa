//go:build !linux

package ws

import (
	"errors"
	"net"
)

// Poller needs epoll: elsewhere NewPoller fails with errors.ErrUnsupported
// and its callers read every socket with a goroutine.
type Poller struct{}

// NewPoller fails with errors.ErrUnsupported.
func NewPoller() (*Poller, error) { return nil, errors.ErrUnsupported }

// Pollable is false: there is no Poller.
func Pollable(net.Conn) bool { return false }

// The methods of a Poller that cannot exist do nothing.

func (p *Poller) Add(net.Conn, uint64) error      { return errors.ErrUnsupported }
func (p *Poller) Rearm(net.Conn, uint64) error    { return errors.ErrUnsupported }
func (p *Poller) Remove(net.Conn)                 {}
func (p *Poller) Wait([]uint64) ([]uint64, error) { return nil, net.ErrClosed }
func (p *Poller) Wake()                           {}
func (p *Poller) Close()                          {}
