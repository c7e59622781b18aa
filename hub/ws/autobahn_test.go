package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// echoServer serves one connection as a server built on Conn does: it
// reads into a buffer that holds any frame it accepts, echoes every data
// message, answers pings with pongs, and ends with a close frame: the
// peer's code echoed (RFC 6455 section 5.5.1), or the code of the
// violation that ended the read. Then it reads what the client still
// sends until it closes: closing a socket with unread bytes resets it,
// which may drop the close frame on the client's side.
func echoServer(c *Conn) {
	defer c.Close()
	nc := c.NetConn()
	deadline := time.Now().Add(10 * time.Second)
	_ = nc.SetReadDeadline(deadline)
	buf := make([]byte, MaxHeader+readLimit)
	w := 0
	for {
		n, rerr := nc.Read(buf[w:])
		w += n
		used := 0
		for {
			fn, op, data, err := c.ReadFrame(buf[used:w])
			used += fn
			var ce *CloseError
			if errors.As(err, &ce) {
				reason := ce.Reason
				if ce.Peer {
					reason = ""
				}
				_ = c.WriteClose(ce.Code, reason, deadline)
				if tc, ok := nc.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				_, _ = io.Copy(io.Discard, nc)
				return
			}
			if fn == 0 {
				break
			}
			switch op {
			case OpText, OpBinary:
				_ = c.Write(c.AppendFrame(nil, op, data), deadline)
			case OpPing:
				_ = c.Write(c.AppendFrame(nil, OpPong, data), deadline)
			}
		}
		w = copy(buf, buf[used:w])
		if rerr != nil {
			return
		}
	}
}

// serverReplies is what the server wrote, decoded as its client decodes
// it: "text:...", "binary:...", "pong:...", then "close:CODE".
func serverReplies(t *testing.T, b []byte) []string {
	t.Helper()
	c := NewConn(nil, Client, 1<<20)
	var out []string
	for len(b) > 0 {
		n, op, data, err := c.ReadFrame(b)
		if ce, ok := errors.AsType[*CloseError](err); ok && ce.Peer {
			out = append(out, fmt.Sprintf("close:%d", ce.Code))
			b = b[n:]
			if len(b) > 0 {
				t.Errorf("% x after the server's close frame", b)
			}
			break
		}
		if err != nil || n == 0 {
			t.Fatalf("the server wrote a bad frame: % x: %v", b, err)
		}
		b = b[n:]
		switch op {
		case OpText:
			out = append(out, "text:"+string(data))
		case OpBinary:
			out = append(out, "binary:"+string(data))
		case OpPong:
			out = append(out, "pong:"+string(data))
		default:
			out = append(out, fmt.Sprintf("op %#x:%s", op, data))
		}
	}
	return out
}

// closeCode is the payload of a close frame with code.
func closeCode(code int) string { return string(binary.BigEndian.AppendUint16(nil, uint16(code))) }

// TestAutobahn is a table of raw client frames in and what the server
// must answer, after the cases of the Autobahn test suite that matter to
// a server without extensions. Every input ends with a normal close
// frame, which the server echoes unless something ended the connection
// before. Each case runs twice over real TCP: written at once, and one
// byte per write.
func TestAutobahn(t *testing.T) {
	end := closeFrame(1000, "")
	text := func(s string) []byte { return wsFrame(true, OpText, s) }
	max := strings.Repeat("m", readLimit)
	tests := []struct {
		name string
		in   []byte
		want []string // the last is the close code the server sends
	}{
		// 1.x framing
		{"empty text", text(""), []string{"text:", "close:1000"}},
		{"7-bit length", text("hello"), []string{"text:hello", "close:1000"}},
		{"longest 7-bit length", text(strings.Repeat("a", 125)), []string{"text:" + strings.Repeat("a", 125), "close:1000"}},
		{"16-bit length", text(strings.Repeat("b", 126)), []string{"text:" + strings.Repeat("b", 126), "close:1000"}},
		{"16-bit length at the read limit", text(max), []string{"text:" + max, "close:1000"}},
		{"64-bit length", rawFrame(0x81, true, binary.BigEndian.AppendUint64([]byte{127}, 300), strings.Repeat("c", 300)),
			[]string{"text:" + strings.Repeat("c", 300), "close:1000"}},
		{"64-bit length with the top bit", rawFrame(0x81, true, []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 1}, "x"), []string{"close:1002"}},
		{"binary", wsFrame(true, OpBinary, "\x00\xff\xfe"), []string{"binary:\x00\xff\xfe", "close:1000"}},
		{"two messages", cat(text("a"), wsFrame(true, OpBinary, "b")), []string{"text:a", "binary:b", "close:1000"}},

		// 2.x pings and pongs
		{"ping", wsFrame(true, OpPing, "hello"), []string{"pong:hello", "close:1000"}},
		{"empty ping", wsFrame(true, OpPing, ""), []string{"pong:", "close:1000"}},
		{"binary ping", wsFrame(true, OpPing, "\x00\xff\xfe\xfd"), []string{"pong:\x00\xff\xfe\xfd", "close:1000"}},
		{"125-byte ping", wsFrame(true, OpPing, strings.Repeat("p", 125)), []string{"pong:" + strings.Repeat("p", 125), "close:1000"}},
		{"126-byte ping", wsFrame(true, OpPing, strings.Repeat("p", 126)), []string{"close:1002"}},
		{"unsolicited pong", wsFrame(true, OpPong, "x"), []string{"close:1000"}},
		{"pong then ping", cat(wsFrame(true, OpPong, "x"), wsFrame(true, OpPing, "y")), []string{"pong:y", "close:1000"}},
		{"ten pings", cat(slices.Repeat([][]byte{wsFrame(true, OpPing, "z")}, 10)...), append(slices.Repeat([]string{"pong:z"}, 10), "close:1000")},
		{"126-byte pong", wsFrame(true, OpPong, strings.Repeat("p", 126)), []string{"close:1002"}},
		{"fragmented ping", wsFrame(false, OpPing, "x"), []string{"close:1002"}},
		{"fragmented close", wsFrame(false, OpClose, closeCode(1000)), []string{"close:1002"}},

		// 3.x reserved bits
		{"RSV1 on text", rawFrame(0xc1, true, []byte{1}, "x"), []string{"close:1002"}},
		{"RSV2 on text", rawFrame(0xa1, true, []byte{1}, "x"), []string{"close:1002"}},
		{"RSV3 on text", rawFrame(0x91, true, []byte{1}, "x"), []string{"close:1002"}},
		{"RSV1-3 on binary", rawFrame(0xf2, true, []byte{1}, "x"), []string{"close:1002"}},
		{"RSV on ping", rawFrame(0xc9, true, []byte{1}, "x"), []string{"close:1002"}},
		{"RSV after a good message", cat(text("ok"), rawFrame(0xc1, true, []byte{1}, "x")), []string{"text:ok", "close:1002"}},

		// 5.x fragmentation
		{"text in three fragments", cat(wsFrame(false, OpText, "frag"), wsFrame(false, OpContinuation, "men"), wsFrame(true, OpContinuation, "ted")),
			[]string{"text:fragmented", "close:1000"}},
		{"empty fragments", cat(wsFrame(false, OpText, ""), wsFrame(false, OpContinuation, "x"), wsFrame(true, OpContinuation, "")),
			[]string{"text:x", "close:1000"}},
		{"binary in two fragments", cat(wsFrame(false, OpBinary, "a"), wsFrame(true, OpContinuation, "b")), []string{"binary:ab", "close:1000"}},
		{"ping between fragments", cat(wsFrame(false, OpText, "a"), wsFrame(true, OpPing, "p"), wsFrame(true, OpContinuation, "b")),
			[]string{"pong:p", "text:ab", "close:1000"}},
		{"pong between fragments", cat(wsFrame(false, OpText, "a"), wsFrame(true, OpPong, "p"), wsFrame(true, OpContinuation, "b")),
			[]string{"text:ab", "close:1000"}},
		{"close between fragments", cat(wsFrame(false, OpText, "a"), closeFrame(1001, ""), wsFrame(true, OpContinuation, "b")),
			[]string{"close:1001"}},
		{"continuation without a message", wsFrame(true, OpContinuation, "x"), []string{"close:1002"}},
		{"unfinished continuation without a message", wsFrame(false, OpContinuation, "x"), []string{"close:1002"}},
		{"continuation after a whole message", cat(text("a"), wsFrame(true, OpContinuation, "b")), []string{"text:a", "close:1002"}},
		{"text inside a fragmented text", cat(wsFrame(false, OpText, "a"), text("b")), []string{"close:1002"}},
		{"binary inside a fragmented text", cat(wsFrame(false, OpText, "a"), wsFrame(false, OpBinary, "b")), []string{"close:1002"}},

		// 6.x UTF-8
		{"valid UTF-8", text("κόσμε"), []string{"text:κόσμε", "close:1000"}},
		{"two-byte character split across fragments", cat(wsFrame(false, OpText, "\xc3"), wsFrame(true, OpContinuation, "\xa9")),
			[]string{"text:é", "close:1000"}},
		{"four-byte character in four fragments", cat(wsFrame(false, OpText, "\xf0"), wsFrame(false, OpContinuation, "\x9d"),
			wsFrame(false, OpContinuation, "\x84"), wsFrame(true, OpContinuation, "\x9e")), []string{"text:𝄞", "close:1000"}},
		{"invalid byte", text("ok\xff"), []string{"close:1007"}},
		{"overlong encoding", text("\xc0\xaf"), []string{"close:1007"}},
		{"surrogate", text("\xed\xa0\x80"), []string{"close:1007"}},
		{"truncated character", text("a\xe2\x82"), []string{"close:1007"}},
		{"invalid sequence split across fragments", cat(wsFrame(false, OpText, "\xce\xba\xe1\xbd"), wsFrame(true, OpContinuation, "\xb9\xcf\x83\xed\xa0\x80")),
			[]string{"close:1007"}},
		{"character cut at the last fragment", cat(wsFrame(false, OpText, "a"), wsFrame(true, OpContinuation, "\xc3")), []string{"close:1007"}},
		{"binary is not UTF-8 checked", wsFrame(true, OpBinary, "\xff"), []string{"binary:\xff", "close:1000"}},

		// 7.x close
		{"close without a payload", wsFrame(true, OpClose, ""), []string{"close:1005"}},
		{"close with a reason", closeFrame(1000, "bye, κόσμε"), []string{"close:1000"}},
		{"close with a 123-byte reason", closeFrame(1000, strings.Repeat("r", 123)), []string{"close:1000"}},
		{"close of one byte", wsFrame(true, OpClose, "\x03"), []string{"close:1002"}},
		{"close with a 124-byte reason", wsFrame(true, OpClose, closeCode(1000)+strings.Repeat("r", 124)), []string{"close:1002"}},
		{"close with invalid UTF-8", closeFrame(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), []string{"close:1007"}},
		{"nothing after close", cat(closeFrame(1000, ""), text("late"), wsFrame(true, OpPing, "late")), []string{"close:1000"}},
		{"message then close", cat(text("a"), closeFrame(1001, "")), []string{"text:a", "close:1001"}},

		// 9.x limits: the hub's read limit
		{"text over the read limit", text(max + "x"), []string{"close:1009"}},
		{"64-bit length over the read limit", rawFrame(0x81, true, binary.BigEndian.AppendUint64([]byte{127}, 1<<32), ""), []string{"close:1009"}},
		{"fragments over the read limit", cat(wsFrame(false, OpText, max[:4000]), wsFrame(true, OpContinuation, max[:97])), []string{"close:1009"}},
		{"fragments at the read limit", cat(wsFrame(false, OpText, max[:4000]), wsFrame(true, OpContinuation, max[:96])),
			[]string{"text:" + max, "close:1000"}},

		// masking (RFC 6455 section 5.1)
		{"unmasked text", rawFrame(0x81, false, []byte{2}, "hi"), []string{"close:1002"}},
		{"unmasked ping", rawFrame(0x89, false, []byte{0}, ""), []string{"close:1002"}},
		{"unmasked close", rawFrame(0x88, false, []byte{2}, closeCode(1000)), []string{"close:1002"}},
	}
	// Close codes: the valid ones are echoed, the others refused.
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		tests = append(tests, struct {
			name string
			in   []byte
			want []string
		}{fmt.Sprintf("close code %d", code), closeFrame(code, "x"), []string{fmt.Sprintf("close:%d", code)}})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		tests = append(tests, struct {
			name string
			in   []byte
			want []string
		}{fmt.Sprintf("close code %d", code), closeFrame(code, ""), []string{"close:1002"}})
	}
	// Reserved opcodes.
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		tests = append(tests, struct {
			name string
			in   []byte
			want []string
		}{fmt.Sprintf("reserved opcode %#x", op), cat(text("before"), wsFrame(true, op, "x")), []string{"text:before", "close:1002"}})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bytewise := range []bool{false, true} {
				client, server := tcpPair(t)
				served := make(chan struct{})
				go func() {
					defer close(served)
					echoServer(NewConn(server, Server, readLimit))
				}()
				_ = client.SetDeadline(time.Now().Add(10 * time.Second))
				in := cat(tt.in, end)
				wrote := make(chan error, 1)
				go func() {
					// The server reads everything until the client closes.
					defer client.(*net.TCPConn).CloseWrite()
					if !bytewise {
						_, err := client.Write(in)
						wrote <- err
						return
					}
					for i := range in {
						if _, err := client.Write(in[i : i+1]); err != nil {
							wrote <- err
							return
						}
					}
					wrote <- nil
				}()
				got, err := io.ReadAll(client)
				if err != nil {
					t.Fatalf("reading the server's replies: %v", err)
				}
				<-served
				if err := <-wrote; err != nil {
					t.Errorf("writing the frames: %v", err)
				}
				if r := serverReplies(t, got); !slices.Equal(r, tt.want) {
					t.Errorf("one byte a write %v: the server answered %.200q, want %.200q", bytewise, r, tt.want)
				}
			}
		})
	}
}
