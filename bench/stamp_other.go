//go:build !linux

package bench

import (
	"net"
	"time"
)

func stamped(c net.Conn, _ *net.TCPConn) net.Conn { return c }

func receivedAt(net.Conn) time.Time { return time.Time{} }
