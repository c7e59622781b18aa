package ws

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// readLimit is the hub's: the server Conns of these tests read messages of
// at most this many bytes.
const readLimit = 4096

// readAll decodes the whole frames at the start of b with c, as a
// server's reader does, writing down what they mean ("text:...",
// "binary:...", "ping:..."). It returns the bytes they took and how many
// frames there were.
func readAll(c *Conn, b []byte, got *[]string) (used, frames int, err error) {
	for {
		n, op, data, err := c.ReadFrame(b[used:])
		if n > 0 {
			used += n
			frames++
		}
		if err != nil || n == 0 {
			return used, frames, err
		}
		switch op {
		case OpText:
			*got = append(*got, "text:"+string(data))
		case OpBinary:
			*got = append(*got, "binary:"+string(data))
		case OpPing:
			*got = append(*got, "ping:"+string(data))
		}
	}
}

// serverConn is a server Conn with the hub's read limit, for decoding
// only.
func serverConn() *Conn { return NewConn(nil, Server, readLimit) }

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// wsFrame encodes a frame as a client sends it: masked, with the shortest
// length encoding.
func wsFrame(fin bool, op byte, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	return rawFrame(b0, true, lengthBytes(len(payload)), payload)
}

// lengthBytes is the shortest length field for n (without the mask bit).
func lengthBytes(n int) []byte {
	switch {
	case n < 126:
		return []byte{byte(n)}
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16([]byte{126}, uint16(n))
	default:
		return binary.BigEndian.AppendUint64([]byte{127}, uint64(n))
	}
}

// rawFrame encodes a frame from its first byte, its length field (the
// second byte without the mask bit, then any extended length) and payload.
func rawFrame(b0 byte, masked bool, length []byte, payload string) []byte {
	b := []byte{b0, length[0]}
	if masked {
		b[1] |= 0x80
	}
	b = append(b, length[1:]...)
	p := []byte(payload)
	if masked {
		b = append(b, testKey[:]...)
		mask(p, testKey)
	}
	return append(b, p...)
}

func closeFrame(code int, reason string) []byte {
	return wsFrame(true, OpClose, string(binary.BigEndian.AppendUint16(nil, uint16(code)))+reason)
}

func cat(frames ...[]byte) []byte { return slices.Concat(frames...) }

func TestReadFrames(t *testing.T) {
	max := strings.Repeat("a", readLimit)
	tests := []struct {
		name   string
		in     []byte
		want   []string // what the handler got
		code   int      // close code of the error; 0: none
		peer   bool     // the error is the client's close frame
		frames int
	}{
		{name: "masked text", in: wsFrame(true, OpText, "hello"), want: []string{"text:hello"}, frames: 1},
		{name: "empty text", in: wsFrame(true, OpText, ""), want: []string{"text:"}, frames: 1},
		{name: "two messages", in: cat(wsFrame(true, OpText, "a"), wsFrame(true, OpText, "b")), want: []string{"text:a", "text:b"}, frames: 2},
		{name: "unmasked text", in: rawFrame(0x81, false, []byte{5}, "hello"), code: closeProtocol},
		{
			name: "fragmented text with interleaved ping and pong",
			in: cat(wsFrame(false, OpText, "he"), wsFrame(true, OpPing, "p"), wsFrame(false, OpContinuation, "ll"),
				wsFrame(true, OpPong, "x"), wsFrame(true, OpContinuation, "o")),
			want:   []string{"ping:p", "text:hello"},
			frames: 5,
		},
		{
			name:   "UTF-8 sequence split across fragments",
			in:     cat(wsFrame(false, OpText, "\xc3"), wsFrame(true, OpContinuation, "\xa9")),
			want:   []string{"text:é"},
			frames: 2,
		},
		{name: "bad UTF-8", in: wsFrame(true, OpText, "ok\xff"), code: closeInvalidData, frames: 1},
		{
			name: "bad UTF-8 in a fragmented message",
			in:   cat(wsFrame(false, OpText, "\xc3"), wsFrame(true, OpContinuation, "x")),
			code: closeInvalidData, frames: 2,
		},
		{name: "binary", in: wsFrame(true, OpBinary, "\xff{}"), want: []string{"binary:\xff{}"}, frames: 1},
		{
			name:   "fragmented binary",
			in:     cat(wsFrame(false, OpBinary, "a"), wsFrame(true, OpContinuation, "b")),
			want:   []string{"binary:ab"},
			frames: 2,
		},
		{name: "largest message", in: wsFrame(true, OpText, max), want: []string{"text:" + max}, frames: 1},
		{name: "oversize frame", in: wsFrame(true, OpText, max+"a"), code: closeTooBig},
		{name: "oversize 64-bit length", in: rawFrame(0x81, true, lengthBytes(1<<40), ""), code: closeTooBig},
		{
			name: "oversize fragmented message",
			in:   cat(wsFrame(false, OpText, max[:4000]), wsFrame(true, OpContinuation, max[:97])),
			code: closeTooBig, frames: 1,
		},
		{
			name:   "non-minimal 64-bit length",
			in:     rawFrame(0x81, true, binary.BigEndian.AppendUint64([]byte{127}, 2), "hi"),
			want:   []string{"text:hi"},
			frames: 1,
		},
		{name: "64-bit length with the top bit", in: rawFrame(0x81, true, []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 2}, "hi"), code: closeProtocol},
		{name: "close 1000", in: closeFrame(1000, "bye"), code: 1000, peer: true, frames: 1},
		{name: "close 3000", in: closeFrame(3000, ""), code: 3000, peer: true, frames: 1},
		{name: "close without a code", in: wsFrame(true, OpClose, ""), code: closeNoStatus, peer: true, frames: 1},
		{name: "close of one byte", in: wsFrame(true, OpClose, "x"), code: closeProtocol, frames: 1},
		{name: "close with code 1005", in: closeFrame(1005, ""), code: closeProtocol, frames: 1},
		{name: "close with code 999", in: closeFrame(999, ""), code: closeProtocol, frames: 1},
		{name: "close with bad UTF-8", in: closeFrame(1000, "\xff"), code: closeInvalidData, frames: 1},
		{name: "nothing after close", in: cat(closeFrame(1001, ""), wsFrame(true, OpText, "late")), code: 1001, peer: true, frames: 1},
		{name: "continuation without a message", in: wsFrame(true, OpContinuation, "x"), code: closeProtocol},
		{
			name: "message inside a fragmented one",
			in:   cat(wsFrame(false, OpText, "a"), wsFrame(true, OpText, "b")),
			code: closeProtocol, frames: 1,
		},
		{name: "reserved bit", in: rawFrame(0xc1, true, []byte{1}, "x"), code: closeProtocol},
		{name: "unknown opcode", in: wsFrame(true, 0x3, "x"), code: closeProtocol},
		{name: "fragmented ping", in: wsFrame(false, OpPing, "x"), code: closeProtocol},
		{name: "long ping", in: wsFrame(true, OpPing, strings.Repeat("p", 126)), code: closeProtocol},
		{name: "ping then text", in: cat(wsFrame(true, OpPing, ""), wsFrame(true, OpText, "y")), want: []string{"ping:", "text:y"}, frames: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, got []string, frames int, err error, frag *fragment) {
				t.Helper()
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s: handler got %q, want %q", how, got, tt.want)
				}
				if frames != tt.frames {
					t.Errorf("%s: %d frames, want %d", how, frames, tt.frames)
				}
				ce, _ := err.(*CloseError)
				switch {
				case tt.code == 0 && err != nil:
					t.Errorf("%s: error %v, want none", how, err)
				case tt.code != 0 && (ce == nil || ce.Code != tt.code || ce.Peer != tt.peer):
					t.Errorf("%s: error %#v, want close %d (peer %v)", how, err, tt.code, tt.peer)
				}
				if tt.code == 0 && frag != nil {
					t.Errorf("%s: a fragment is left: %+v", how, frag)
				}
			}

			// All at once.
			c := serverConn()
			var got []string
			buf := slices.Clone(tt.in)
			used, frames, err := readAll(c, buf, &got)
			if err == nil && used != len(buf) {
				t.Errorf("all at once: used %d bytes of %d", used, len(buf))
			}
			check("all at once", got, frames, err, c.frag)

			// One byte at a time, as a reader gets them from a slow client.
			c, got, frames, err = serverConn(), nil, 0, nil
			var pending []byte
			for _, b := range tt.in {
				pending = append(pending, b)
				used, n, ferr := readAll(c, pending, &got)
				frames += n
				pending = pending[used:]
				if ferr != nil {
					err = ferr
					break
				}
			}
			if err == nil && len(pending) != 0 {
				t.Errorf("byte by byte: %d bytes left", len(pending))
			}
			check("byte by byte", got, frames, err, c.frag)
		})
	}
}

func TestReadFramesLeavesAnIncompleteFrame(t *testing.T) {
	first := wsFrame(true, OpText, "one")
	second := wsFrame(true, OpText, "two")
	for cut := 0; cut < len(second); cut++ {
		var got []string
		in := cat(first, second[:cut])
		used, frames, err := readAll(serverConn(), in, &got)
		if err != nil || used != len(first) || frames != 1 || !slices.Equal(got, []string{"text:one"}) {
			t.Errorf("cut at %d: used %d, frames %d, err %v, got %q; want %d, 1, nil, [text:one]",
				cut, used, frames, err, got, len(first))
		}
	}
}

// TestReadFrameClient: a client reads the server's frames unmasked, up to
// its own limit, and refuses masked ones.
func TestReadFrameClient(t *testing.T) {
	big := strings.Repeat("b", 70000) // a 64-bit length
	tests := []struct {
		name string
		in   []byte
		want []string
		code int
	}{
		{name: "text", in: rawFrame(0x81, false, []byte{2}, "hi"), want: []string{"text:hi"}},
		{name: "64-bit length", in: rawFrame(0x81, false, lengthBytes(len(big)), big), want: []string{"text:" + big}},
		{name: "over the limit", in: rawFrame(0x81, false, lengthBytes(1<<20+1), ""), code: closeTooBig},
		{name: "ping", in: rawFrame(0x89, false, []byte{1}, "p"), want: []string{"ping:p"}},
		{name: "masked", in: wsFrame(true, OpText, "hi"), code: closeProtocol},
		{name: "close 1001", in: rawFrame(0x88, false, []byte{2}, "\x03\xe9"), code: 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			used, _, err := readAll(NewConn(nil, Client, 1<<20), slices.Clone(tt.in), &got)
			ce, _ := err.(*CloseError)
			switch {
			case tt.code == 0 && (err != nil || used != len(tt.in)):
				t.Errorf("used %d of %d bytes, error %v; want all, no error", used, len(tt.in), err)
			case tt.code != 0 && (ce == nil || ce.Code != tt.code):
				t.Errorf("error %v, want close %d", err, tt.code)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %.40q, want %.40q", got, tt.want)
			}
		})
	}
}
