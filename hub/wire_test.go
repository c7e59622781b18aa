package hub

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

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
