//go:build !linux

package bench

import "syscall"

func bindNoPort(network, address string, c syscall.RawConn) error { return nil }
