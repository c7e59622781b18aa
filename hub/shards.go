package hub

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// shardCount is how many parts a shardedMap has: enough that walking one
// part stays short with many thousands of sockets.
const shardCount = 64

// shardedMap is a map split into independently locked parts. The sweeper
// walks every socket and every watched ticket once a second; over one map
// under one lock every delivery's ticket lookup would wait behind the whole
// walk (longer still when the walking thread is preempted). Walked part by
// part, it holds up a lookup for one part's walk at most.
//
// Callers lock a part themselves (part), so that a lookup and what depends
// on it (a reference count, a ping schedule) stay under one lock.
type shardedMap[K comparable, V any] struct {
	seed  maphash.Seed
	parts [shardCount]mapPart[K, V]
	n     atomic.Int64 // entries in all parts
}

// mapPart is one part of a shardedMap.
type mapPart[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
	// Parts are locked from several cores at once: one cache line each.
	_ [48]byte
}

func newShardedMap[K comparable, V any]() *shardedMap[K, V] {
	s := &shardedMap[K, V]{seed: maphash.MakeSeed()}
	for i := range s.parts {
		s.parts[i].m = make(map[K]V)
	}
	return s
}

// part is the part that holds k; the caller locks it.
func (s *shardedMap[K, V]) part(k K) *mapPart[K, V] {
	return &s.parts[maphash.Comparable(s.seed, k)%shardCount]
}

// len is how many entries the map holds.
func (s *shardedMap[K, V]) len() int { return int(s.n.Load()) }

// get returns k's value, or the zero value.
func (s *shardedMap[K, V]) get(k K) V {
	p := s.part(k)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[k]
}

// putLocked adds or replaces k in p, which the caller holds.
func (s *shardedMap[K, V]) putLocked(p *mapPart[K, V], k K, v V) {
	if _, ok := p.m[k]; !ok {
		s.n.Add(1)
	}
	p.m[k] = v
}

// deleteLocked removes k from p, which the caller holds.
func (s *shardedMap[K, V]) deleteLocked(p *mapPart[K, V], k K) {
	if _, ok := p.m[k]; ok {
		delete(p.m, k)
		s.n.Add(-1)
	}
}

// walk calls fn for every entry, one part at a time, under that part's
// lock: fn must be short and must not take the map's locks.
func (s *shardedMap[K, V]) walk(fn func(V)) { s.walkSlice(0, 1, fn) }

// walkSlice is walk over slice i of n (0 <= i < n <= shardCount): every
// nth part, from part i. The n slices of a map cover it exactly once.
func (s *shardedMap[K, V]) walkSlice(i, n int, fn func(V)) {
	for ; i < len(s.parts); i += n {
		p := &s.parts[i]
		p.mu.Lock()
		for _, v := range p.m {
			fn(v)
		}
		p.mu.Unlock()
	}
}

// values appends every value to dst, one part at a time: a snapshot that
// entries added or removed meanwhile may or may not be in.
func (s *shardedMap[K, V]) values(dst []V) []V {
	s.walk(func(v V) { dst = append(dst, v) })
	return dst
}
