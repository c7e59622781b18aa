// Package breaker holds a consecutive-failure circuit breaker for calls
// to an upstream (WeChat, a carrier): after a run of failures it fails
// calls at once for a cool-down, then lets one call probe the upstream.
package breaker

import (
	"sync"
	"time"
)

// The states State reports.
const (
	Closed   = "closed"    // calls go to the upstream
	Open     = "open"      // calls fail at once until the cool-down ends
	HalfOpen = "half-open" // the cool-down ended: the next call probes the upstream
)

// Outcome is what one call tells the breaker.
type Outcome int

const (
	Success Outcome = iota // the upstream answered (an error code of its own too)
	Failure                // timeout, network error, 5xx, garbage
	Ignored                // the caller gave up first: says nothing about the upstream
)

// Breaker is a consecutive-failure circuit breaker. Closed, it counts calls that failed upstream in a row;
// at threshold it opens for coolDown, during which calls fail at once
// without touching the upstream. After the cool-down one call (the probe) goes
// through while the others still fail fast: its success closes the
// breaker, its failure opens it for another cool-down.
//
// It is small and hand-written rather than sony/gobreaker because it needs
// exactly this, an outcome that counts neither way (the caller gave up),
// and a clock the tests can move.
type Breaker struct {
	threshold int
	coolDown  time.Duration
	now       func() time.Time
	onChange  func(from, to string, failures int)

	mu        sync.Mutex
	failures  int           // consecutive, while closed
	openUntil time.Time     // zero: closed
	probing   bool          // a probe is out (half-open)
	changed   chan struct{} // closed and replaced when a call's outcome changes the state
}

// New returns a closed Breaker that opens after threshold failures in a
// row, for coolDown, reading the time from now (nil: time.Now). onChange,
// if set, is called after each change of state (from, to, the consecutive
// failures), outside the breaker's lock. Safe for concurrent use.
func New(threshold int, coolDown time.Duration, now func() time.Time, onChange func(from, to string, failures int)) *Breaker {
	if now == nil {
		now = time.Now
	}
	return &Breaker{threshold: max(threshold, 1), coolDown: coolDown, now: now, onChange: onChange}
}

// Allow asks to make a call. It returns done, to be called once with the
// call's outcome, and ok; or, when the call must fail fast, ok false and
// how long the caller should wait before trying again.
func (b *Breaker) Allow() (done func(Outcome), retryAfter time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return b.record(false), 0, true
	}
	now := b.now()
	if left := b.openUntil.Sub(now); left > 0 {
		return nil, left, false
	}
	if b.probing {
		// The probe decides; it is bounded by the caller's timeout.
		return nil, time.Second, false
	}
	b.probing = true
	return b.record(true), 0, true
}

// record returns the done function of one allowed call.
func (b *Breaker) record(probe bool) func(Outcome) {
	var once sync.Once
	return func(o Outcome) {
		once.Do(func() {
			b.mu.Lock()
			from := b.stateLocked()
			if probe {
				b.probing = false
			}
			switch o {
			case Success:
				b.failures = 0
				b.openUntil = time.Time{}
			case Failure:
				if probe || b.openUntil.IsZero() {
					b.failures++
					if probe || b.failures >= b.threshold {
						b.openUntil = b.now().Add(b.coolDown)
					}
				}
			}
			to, failures := b.stateLocked(), b.failures
			if from != to || probe {
				// A finished probe changes nothing visible when it
				// reopens the breaker, but a Heal waiting for it to
				// end must look again.
				b.notifyLocked()
			}
			b.mu.Unlock()
			if from != to && b.onChange != nil {
				b.onChange(from, to, failures)
			}
		})
	}
}

// notifyLocked wakes everyone waiting on watch. b.mu must be held.
func (b *Breaker) notifyLocked() {
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
}

// Watch reports the state, how long an open breaker stays open, whether a
// probe is out, and a channel closed when a call's outcome next changes
// them. The end of a cool-down is not signalled: wait for left to pass.
func (b *Breaker) Watch() (state string, left time.Duration, probing bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	state = b.stateLocked()
	if state == Open {
		left = b.openUntil.Sub(b.now())
	}
	return state, left, b.probing, b.changed
}

// State is Closed, Open or HalfOpen.
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked()
}

func (b *Breaker) stateLocked() string {
	switch {
	case b.openUntil.IsZero():
		return Closed
	case b.now().Before(b.openUntil):
		return Open
	}
	return HalfOpen
}
