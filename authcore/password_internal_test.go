package authcore

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHashGateBound: a burst of 1000 password checks never has more than
// the gate's slots hashing at once, so memory stays under slots × m; the
// checks that cannot get a slot in time give up with 503, and the rest
// finish once the hashes are let go. The hash function is blocked, not
// slept: the test counts entries while they are held.
func TestHashGateBound(t *testing.T) {
	const slots, burst = 4, 1000
	g := newHashGate(slots, time.Hour, DefaultArgon2)
	var inside, peak atomic.Int32
	entered := make(chan struct{}, burst)
	release := make(chan struct{})
	g.key = func(pw, salt []byte, _, _ uint32, _ uint8, keyLen uint32) []byte {
		n := inside.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		inside.Add(-1)
		return make([]byte, keyLen)
	}
	phc := encodePHC(DefaultArgon2, make([]byte, 16), make([]byte, 32))
	var wg sync.WaitGroup
	errs := make(chan error, burst)
	for range burst {
		wg.Go(func() {
			_, err := g.verify(context.Background(), phc, "password")
			errs <- err
		})
	}
	for range slots {
		<-entered // every slot taken
	}
	// While they are held, nobody else gets in: a check with a short wait
	// gives up with upstream_unavailable.
	short := &hashGate{slots: g.slots, wait: time.Millisecond, params: g.params, key: g.key}
	if _, err := short.verify(context.Background(), phc, "password"); KindOf(err) != KindUpstreamUnavailable {
		t.Errorf("a check while every slot is held: %v, want KindUpstreamUnavailable", err)
	}
	if got := inside.Load(); got != slots {
		t.Errorf("%d hashes inside, want %d", got, slots)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a check of the burst: %v", err)
		}
	}
	if got := peak.Load(); got != slots {
		t.Errorf("at most %d hashes ran at once, want exactly the %d slots", got, slots)
	}
}

func TestHashGateDefaultSlots(t *testing.T) {
	g := newHashGate(0, 0, DefaultArgon2)
	want := max(1, runtime.GOMAXPROCS(0)-1)
	if cap(g.slots) != want || g.wait != DefaultPasswordWait {
		t.Errorf("default gate: %d slots, wait %v; want %d (GOMAXPROCS-1, at least 1) and %v", cap(g.slots), g.wait, want, DefaultPasswordWait)
	}
}

func TestPHC(t *testing.T) {
	g := newHashGate(1, time.Second, DefaultArgon2)
	ctx := context.Background()
	phc, err := g.hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not name argon2id m=19456,t=2,p=1", phc)
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "Correct horse battery staple": false, "": false} {
		if got, err := g.verify(ctx, phc, pw); err != nil || got != want {
			t.Errorf("verify(%q) = %v, %v; want %v", pw, got, err, want)
		}
	}
	other, _ := g.hash(ctx, "correct horse battery staple")
	if other == phc {
		t.Error("two hashes of one password are equal: the salt is not fresh")
	}
	// Parameters are read from the string, so a hash made with other costs
	// (an older setting) still verifies.
	cheap := Argon2Params{Memory: 64, Time: 1, Threads: 2, KeyLen: 24, SaltLen: 12}
	h2, _ := newHashGate(1, time.Second, cheap).hash(ctx, "pw-cheap")
	if ok, err := g.verify(ctx, h2, "pw-cheap"); err != nil || !ok {
		t.Errorf("verify of a hash with other parameters: %v, %v", ok, err)
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := g.verify(ctx, bad, "x"); err == nil {
			t.Errorf("verify against %q: no error", bad)
		}
	}
}

func TestCommonPasswords(t *testing.T) {
	set := commonPasswordSet()
	if len(set) < 1000 {
		t.Errorf("%d common passwords, want at least 1000", len(set))
	}
	for _, pw := range []string{"password", "12345678", "qwertyuiop", "iloveyou", "woaini1314", "1qaz2wsx"} {
		if _, ok := set[pw]; !ok {
			t.Errorf("%q is not in the common list", pw)
		}
	}
}

func TestValidUsername(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "a.b-c_d": true, "abc": true, strings.Repeat("a", 32): true, "user2026": true,
		"ab": false, strings.Repeat("a", 33): false, "Alice": false, "al ice": false, "al@ce": false,
		"13800138000": false, "008613800138000": false, "用户名": false, "": false,
	} {
		if got := ValidUsername(name); got != want {
			t.Errorf("ValidUsername(%q) = %v, want %v", name, got, want)
		}
	}
}
