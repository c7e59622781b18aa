package bench

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): with it a
// socket bound to a source address gets its port at connect time, unique
// per (source, destination) rather than per source, so bound sockets do
// not use up the ephemeral range faster than unbound ones.
const ipBindAddressNoPort = 24

func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	_ = serr // an old kernel without it still works, with fewer ports
	return nil
}
