package wechat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Breaker defaults, used when Config leaves them zero.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCoolDown = 10 * time.Second
)

// The states BreakerState reports.
const (
	BreakerClosed   = "closed"    // calls go to WeChat
	BreakerOpen     = "open"      // calls fail at once until the cool-down ends
	BreakerHalfOpen = "half-open" // the cool-down ended: the next call probes WeChat
)

const msgBreakerOpen = "WeChat is unavailable; try again shortly"

// errBreakerOpen is the cause of the errors the open breaker returns.
var errBreakerOpen = errors.New("wechat: circuit breaker open: WeChat failed repeatedly")

// outcome is what one call tells the breaker.
type outcome int

const (
	outcomeSuccess outcome = iota // WeChat answered (an errcode too)
	outcomeFailure                // timeout, network error, 5xx, garbage, -1 after retries
	outcomeIgnored                // the caller gave up first: says nothing about WeChat
)

// breaker is a consecutive-failure circuit breaker around every WeChat
// call of a Client. Closed, it counts calls that failed upstream in a row;
// at threshold it opens for coolDown, during which calls fail at once
// without touching WeChat. After the cool-down one call (the probe) goes
// through while the others still fail fast: its success closes the
// breaker, its failure opens it for another cool-down.
//
// It is small and hand-written rather than sony/gobreaker because it needs
// exactly this, an outcome that counts neither way (the caller gave up),
// and a clock the tests can move.
type breaker struct {
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

// allow asks to make a call. It returns done, to be called once with the
// call's outcome, or a KindUpstreamUnavailable error with RetryAfter when
// the call must fail fast.
func (b *breaker) allow() (done func(outcome), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return b.record(false), nil
	}
	now := b.now()
	if left := b.openUntil.Sub(now); left > 0 {
		return nil, b.reject(left)
	}
	if b.probing {
		// The probe decides; it is bounded by the Client's timeout.
		return nil, b.reject(time.Second)
	}
	b.probing = true
	return b.record(true), nil
}

func (b *breaker) reject(retryAfter time.Duration) error {
	e := authcore.Wrap(authcore.KindUpstreamUnavailable,
		fmt.Errorf("%w (state %s)", errBreakerOpen, b.stateLocked()), msgBreakerOpen)
	e.RetryAfter = retryAfter
	return e
}

// record returns the done function of one allowed call.
func (b *breaker) record(probe bool) func(outcome) {
	var once sync.Once
	return func(o outcome) {
		once.Do(func() {
			b.mu.Lock()
			from := b.stateLocked()
			if probe {
				b.probing = false
			}
			switch o {
			case outcomeSuccess:
				b.failures = 0
				b.openUntil = time.Time{}
			case outcomeFailure:
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
func (b *breaker) notifyLocked() {
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
}

// watch reports the state, how long an open breaker stays open, whether a
// probe is out, and a channel closed when a call's outcome next changes
// them. The end of a cool-down is not signalled: wait for left to pass.
func (b *breaker) watch() (state string, left time.Duration, probing bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	state = b.stateLocked()
	if state == BreakerOpen {
		left = b.openUntil.Sub(b.now())
	}
	return state, left, b.probing, b.changed
}

// state is BreakerClosed, BreakerOpen or BreakerHalfOpen.
func (b *breaker) state() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked()
}

func (b *breaker) stateLocked() string {
	switch {
	case b.openUntil.IsZero():
		return BreakerClosed
	case b.now().Before(b.openUntil):
		return BreakerOpen
	}
	return BreakerHalfOpen
}

// BreakerState reports the state of the Client's circuit breaker around
// WeChat, for metrics and health pages: BreakerClosed, BreakerOpen or
// BreakerHalfOpen.
func (c *Client) BreakerState() string { return c.breaker.state() }

// Up reports whether WeChat is taken to be up: the circuit breaker is
// closed. Open or half-open (the cool-down is over but no call has yet
// shown that WeChat answers) it is down, so that /readyz and
// loginhub_dependency_up do not flap between a probe's failures.
func (c *Client) Up() bool { return c.breaker.state() == BreakerClosed }

// Heal probes WeChat whenever the circuit breaker's cool-down ends and no
// call is out to do it, until ctx ends. Without it an idle hub would stay
// half-open, and so report WeChat down, until a user happened to log in.
// The probe is a stable_token request: it spends no user's code, returns
// the app's current token without invalidating it, and WeChat answering
// it at all (any errcode) closes the breaker. Run it in one goroutine per
// Client; it returns when ctx ends.
func (c *Client) Heal(ctx context.Context) {
	for ctx.Err() == nil {
		state, left, probing, changed := c.breaker.watch()
		if state == BreakerHalfOpen && !probing {
			// The outcome reaches the breaker inside the call; its
			// error says nothing more. Should another call take the
			// probe first, this one fails at once and the loop waits
			// for that probe's end.
			c.StableToken(ctx, false)
			continue
		}
		wake := make(<-chan time.Time) // never: closed, or a probe is out
		var t *time.Timer
		if state == BreakerOpen {
			t = time.NewTimer(left)
			wake = t.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-wake:
		}
		if t != nil {
			t.Stop()
		}
	}
}
