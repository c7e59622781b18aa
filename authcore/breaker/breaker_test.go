package breaker

import (
	"testing"
	"time"
)

// TestBreaker runs the breaker through its states on a hand-moved clock:
// failures in a row open it, an ignored outcome counts neither way, the
// cool-down ends in one probe, a failed probe reopens it, a passed one
// closes it.
func TestBreaker(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var changes []string
	b := New(3, 10*time.Second, func() time.Time { return now }, func(from, to string, _ int) { changes = append(changes, from+">"+to) })
	call := func(o Outcome) bool {
		t.Helper()
		done, _, ok := b.Allow()
		if ok {
			done(o)
		}
		return ok
	}
	for i, o := range []Outcome{Failure, Failure, Ignored, Success, Failure, Failure} {
		if !call(o) {
			t.Fatalf("call %d refused while closed", i+1)
		}
	}
	if got := b.State(); got != Closed {
		t.Fatalf("after 2 failures in a row: %s, want closed", got)
	}
	call(Failure)
	if got := b.State(); got != Open {
		t.Fatalf("after 3 failures in a row: %s, want open", got)
	}
	if _, left, ok := b.Allow(); ok || left != 10*time.Second {
		t.Fatalf("open: Allow = %v, retry after %v; want refused, 10s", ok, left)
	}
	now = now.Add(10 * time.Second)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("after the cool-down: %s, want half-open", got)
	}
	probe, _, ok := b.Allow()
	if !ok {
		t.Fatal("half-open: the probe is refused")
	}
	if _, _, ok := b.Allow(); ok {
		t.Fatal("half-open: a second call passes while the probe is out")
	}
	probe(Failure)
	if got := b.State(); got != Open {
		t.Fatalf("after a failed probe: %s, want open", got)
	}
	now = now.Add(10 * time.Second)
	if !call(Success) {
		t.Fatal("the second probe is refused")
	}
	if got := b.State(); got != Closed {
		t.Fatalf("after a passed probe: %s, want closed", got)
	}
	want := []string{"closed>open", "half-open>open", "half-open>closed"}
	if len(changes) != len(want) {
		t.Fatalf("changes %q, want %q", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Errorf("change %d = %s, want %s", i, changes[i], want[i])
		}
	}
}
