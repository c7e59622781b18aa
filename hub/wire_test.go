package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// encodeState is the event for version n of v, in a buffer of its own.
func encodeState(v authcore.View, n uint64) []byte {
	return appendStateEvent(nil, v, n)
}

// TestWireGolden pins the JSON of every event the hub sends.
func TestWireGolden(t *testing.T) {
	exp := time.Date(2026, 3, 1, 12, 2, 0, 0, time.FixedZone("CST", 8*3600))
	scanned := authcore.View{
		ID: "tk1", State: authcore.StateScanned, Version: 2, ExpiresAt: exp,
		Trail:   []authcore.State{authcore.StatePending, authcore.StateScanned},
		Scanner: &authcore.Profile{Nickname: "Wei <3", AvatarURL: "https://a.example/w.png"},
	}
	cancelled := authcore.View{
		ID: "tk2", State: authcore.StateCancelled, Version: 2, ExpiresAt: exp,
		Trail: []authcore.State{authcore.StatePending, authcore.StateCancelled},
	}
	lines := [][]byte{
		encodeState(scanned, 1), // no scanner at a pending version
		encodeState(scanned, 2),
		encodeState(cancelled, 2), // nobody scanned
		encodeError("tk1", authcore.Wrap(authcore.KindUnauthorized, errors.New("db said: secret hash mismatch"), "wrong watch secret")),
		encodeError("tk1", errors.New("redis: connection refused")), // never shown
		encodeError("", errTooMany),
	}
	got := append(bytes.Join(lines, []byte("\n")), '\n')
	path := filepath.Join("testdata", "events.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./hub -run TestWireGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("events differ from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// FuzzStateEvent holds the hand-written state event to the bytes
// encoding/json writes for the same message: any id, state, profile text
// (control characters, HTML, invalid UTF-8, U+2028) and expiry.
func FuzzStateEvent(f *testing.F) {
	f.Add("tk1", "scanned", "Wei <3", "https://a.example/w.png?a=1&b=2", int64(1772366520), int64(5), uint64(2), true)
	f.Add("", "scanned", "\x00\x1f\"\\\b\f\n\r\t\x7f", "\xff\xfe\u2028\u2029>", int64(0), int64(0), uint64(1), true)
	f.Add("AAAAAAAAAAAAAAAA", "confirmed", "小明 😀", "", int64(-62135596800), int64(999999999), uint64(1<<63), false)
	f.Add("tk2", "pending", "Wei", "https://a.example/w.png", int64(1772366520), int64(0), uint64(1), true) // no scanner while pending
	f.Fuzz(func(t *testing.T, id, state, nickname, avatar string, sec, nsec int64, version uint64, scanned bool) {
		const minSec, maxSec = -62135596800, 253402300799 // years 0001-9999: what RFC 3339 can write
		if span := int64(maxSec - minSec); sec < minSec || sec > maxSec {
			sec = minSec + (sec%span+span)%span
		}
		v := authcore.View{ID: id, State: authcore.State(state), Version: version,
			ExpiresAt: time.Unix(sec, nsec%1e9).In(time.FixedZone("X", 3600))}
		if scanned {
			v.Scanner = &authcore.Profile{Nickname: nickname, AvatarURL: avatar}
		}
		want, err := json.Marshal(struct {
			Ev string `json:"ev"`
			authcore.StateMessage
		}{"state", v.Message(version)})
		if err != nil {
			t.Skip(err) // a time encoding/json refuses
		}
		if got := appendStateEvent(nil, v, version); !bytes.Equal(got, want) {
			t.Errorf("appendStateEvent:\n got %s\nwant %s", got, want)
		}
	})
}

func TestAppendStateEventDoesNotAllocate(t *testing.T) {
	v := authcore.View{ID: "AAAAAAAAAAAAAAAA", State: authcore.StateScanned, Version: 2, ExpiresAt: time.Now(),
		Trail:   []authcore.State{authcore.StatePending, authcore.StateScanned},
		Scanner: &authcore.Profile{Nickname: "alice", AvatarURL: "https://a.example/x.png"}}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = appendStateEvent(buf[:0], v, 2) }); n != 0 {
		t.Errorf("appendStateEvent allocates %v times per event", n)
	}
}
