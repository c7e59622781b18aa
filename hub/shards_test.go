package hub

import (
	"fmt"
	"slices"
	"testing"
)

// filledMap returns a map of "t0".."t<n-1>" to 0..n-1, failing t if its
// size does not follow the puts.
func filledMap(t *testing.T, n int) *shardedMap[string, int] {
	t.Helper()
	s := newShardedMap[string, int]()
	for i := range n {
		k := fmt.Sprint("t", i)
		p := s.part(k)
		p.mu.Lock()
		s.putLocked(p, k, i)
		if got := s.len(); got != i+1 {
			t.Fatalf("size after %d puts = %d", i+1, got)
		}
		p.mu.Unlock()
	}
	return s
}

func TestShardedMap(t *testing.T) {
	s := filledMap(t, 1000)
	p := s.part("t7")
	p.mu.Lock()
	s.putLocked(p, "t7", 70)
	if n := s.len(); n != 1000 {
		t.Errorf("replacing grew the map to %d", n)
	}
	p.mu.Unlock()
	if got := s.get("t7"); got != 70 {
		t.Errorf("get(t7) = %d, want 70", got)
	}
	used := 0
	for i := range s.parts {
		if len(s.parts[i].m) > 0 {
			used++
		}
	}
	if used < shardCount/2 {
		t.Errorf("1000 keys fell in %d of %d parts", used, shardCount)
	}
	for i := range 500 {
		k := fmt.Sprint("t", i)
		p := s.part(k)
		p.mu.Lock()
		s.deleteLocked(p, k)
		s.deleteLocked(p, k) // twice: counted once
		p.mu.Unlock()
	}
	if s.len() != 500 {
		t.Errorf("len after deleting half = %d, want 500", s.len())
	}
	vals := s.values(nil)
	slices.Sort(vals)
	if len(vals) != 500 || vals[0] != 500 || vals[499] != 999 {
		t.Errorf("values = %d entries from %v to %v, want 500..999", len(vals), vals[0], vals[len(vals)-1])
	}
	if s.get("t1") != 0 {
		t.Error("a deleted key is still there")
	}
}

// TestWalkSlice: the n slices of a map (the sweeper's, sweepSlices of
// them) visit every entry exactly once between them, and each slice only
// a share of them.
func TestWalkSlice(t *testing.T) {
	s := filledMap(t, 1000)
	for _, n := range []int{1, 3, sweepSlices, shardCount} {
		seen := make([]int, 1000)
		for i := range n {
			visited := 0
			s.walkSlice(i, n, func(v int) { seen[v]++; visited++ })
			if n > 1 && visited > 1000/n*3 {
				t.Errorf("slice %d of %d visited %d of 1000 entries", i, n, visited)
			}
		}
		for v, times := range seen {
			if times != 1 {
				t.Fatalf("%d slices: entry %d visited %d times, want once", n, v, times)
			}
		}
	}
}
