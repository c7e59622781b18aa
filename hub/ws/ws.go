// Package ws is the WebSocket transport (RFC 6455) after the handshake,
// without extensions. A Conn decodes the frames its reader reads
// (ReadFrame, which enforces masking, opcodes, control frames,
// fragmentation, UTF-8 text, close codes and a size limit, and ends with the
// *CloseError to answer with) and writes frames without waiting (TryWrite)
// or by a deadline (Write, WriteClose), as a Server or a Client. On Linux a
// Poller (epoll) reports idle connections that have something to read, so
// that they need no goroutine meanwhile.
package ws

import (
	"fmt"
)

// Frame opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// MaxHeader is the longest frame header: two bytes, a 64-bit length and a
// masking key. A buffer of MaxHeader plus a Conn's limit holds any frame
// the Conn accepts.
const MaxHeader = 2 + 8 + 4

// Close codes (RFC 6455 section 7.4.1) this package sends or checks.
const (
	closeNormal       = 1000
	closeProtocol     = 1002
	closeNoStatus     = 1005
	closeInvalidData  = 1007
	closeTooBig       = 1009
	maxControlPayload = 125
)

// CloseError ends a connection: a violation of the protocol by the peer,
// or the peer's own close frame (Peer). Either way the reader answers with
// a close frame carrying Code (Conn.WriteClose), unless its own went out
// first.
type CloseError struct {
	Code   int
	Reason string // why, for a violation; short enough for a close frame
	Peer   bool   // the peer's close frame, with its code (1005: none)
}

func (e *CloseError) Error() string {
	if e.Peer {
		return fmt.Sprintf("websocket: the peer closed the connection (%d)", e.Code)
	}
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

func protocolError(reason string) error {
	return &CloseError{Code: closeProtocol, Reason: reason}
}

var (
	errTooBig      = &CloseError{Code: closeTooBig, Reason: "message too big"}
	errInvalidUTF8 = &CloseError{Code: closeInvalidData, Reason: "invalid UTF-8"}
)
