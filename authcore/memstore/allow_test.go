package memstore

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestAllowCountersStayBounded: a client that spreads requests over many
// keys (one per address) must not grow the counters without bound between
// sweeps; windows that ended are dropped as new keys come.
func TestAllowCountersStayBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(nil, func() time.Time { return now })
	ctx := context.Background()
	const per = time.Second
	largest := 0
	for i := range 200_000 {
		now = now.Add(time.Millisecond) // 1000 keys live in any window
		if ok, _, err := s.Allow(ctx, "rl:ticket:"+strconv.Itoa(i), 1, per); err != nil || !ok {
			t.Fatalf("Allow(new key %d) = %v, %v; want true, nil", i, ok, err)
		}
		s.mu.Lock()
		largest = max(largest, len(s.counters))
		s.mu.Unlock()
	}
	if want := 4096; largest > want {
		t.Errorf("counters grew to %d entries with ~1000 live windows; want at most %d", largest, want)
	}

	// Pruning keeps live windows: a limited key stays limited.
	if ok, _, _ := s.Allow(ctx, "rl:ticket:199999", 1, per); ok {
		t.Error("a key over its limit was allowed after pruning")
	}
	ok, retry, _ := s.Allow(ctx, "rl:ticket:199999", 1, per)
	if ok || retry <= 0 || retry > per {
		t.Errorf("over the limit: got ok=%v retryAfter=%v, want false and (0, %v]", ok, retry, per)
	}
}

// TestLimited: Limited reads a window as Allow counts it, without counting.
func TestLimited(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(nil, func() time.Time { return now })
	ctx := context.Background()
	for range 3 {
		s.Allow(ctx, "k", 5, time.Minute)
	}
	for range 2 { // reading twice counts nothing
		if left, err := s.Limited(ctx, "k", 4); err != nil || left != 0 {
			t.Errorf("Limited(4) after 3 events: %v, %v; want 0", left, err)
		}
		if left, err := s.Limited(ctx, "k", 3); err != nil || left != time.Minute {
			t.Errorf("Limited(3) after 3 events: %v, %v; want the minute left", left, err)
		}
	}
	if left, _ := s.Limited(ctx, "other", 1); left != 0 {
		t.Errorf("Limited of no window: %v, want 0", left)
	}
	if err := s.Forget(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Limited(ctx, "k", 1); left != 0 {
		t.Errorf("Limited after Forget: %v, want 0", left)
	}
	for range 3 {
		s.Allow(ctx, "k", 5, time.Minute)
	}
	now = now.Add(time.Minute)
	if left, _ := s.Limited(ctx, "k", 3); left != 0 {
		t.Errorf("Limited after the window ended: %v, want 0", left)
	}
}
