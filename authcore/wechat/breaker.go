package wechat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/breaker"
)

// Breaker defaults, used when Config leaves them zero.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCoolDown = 10 * time.Second
)

// The states BreakerState reports.
const (
	BreakerClosed   = breaker.Closed   // calls go to WeChat
	BreakerOpen     = breaker.Open     // calls fail at once until the cool-down ends
	BreakerHalfOpen = breaker.HalfOpen // the cool-down ended: the next call probes WeChat
)

const msgBreakerOpen = "WeChat is unavailable; try again shortly"

// errBreakerOpen is the cause of the errors the open breaker returns.
var errBreakerOpen = errors.New("wechat: circuit breaker open: WeChat failed repeatedly")

// allowCall asks the Client's circuit breaker (authcore/breaker) to make
// a call: done, to be called once with the call's outcome, or a
// KindUpstreamUnavailable error with RetryAfter when the call must fail
// fast.
func (c *Client) allowCall() (done func(breaker.Outcome), err error) {
	done, retryAfter, ok := c.breaker.Allow()
	if ok {
		return done, nil
	}
	e := authcore.Wrap(authcore.KindUpstreamUnavailable,
		fmt.Errorf("%w (state %s)", errBreakerOpen, c.breaker.State()), msgBreakerOpen)
	e.RetryAfter = retryAfter
	return nil, e
}

// BreakerState reports the state of the Client's circuit breaker around
// WeChat, for metrics and health pages: BreakerClosed, BreakerOpen or
// BreakerHalfOpen.
func (c *Client) BreakerState() string { return c.breaker.State() }

// Up reports whether WeChat is taken to be up: the circuit breaker is
// closed. Open or half-open (the cool-down is over but no call has yet
// shown that WeChat answers) it is down, so that /readyz and
// loginhub_dependency_up do not flap between a probe's failures.
func (c *Client) Up() bool { return c.breaker.State() == BreakerClosed }

// Heal probes WeChat whenever the circuit breaker's cool-down ends and no
// call is out to do it, until ctx ends. Without it an idle hub would stay
// half-open, and so report WeChat down, until a user happened to log in.
// The probe is a stable_token request: it spends no user's code, returns
// the app's current token without invalidating it, and WeChat answering
// it at all (any errcode) closes the breaker. Run it in one goroutine per
// Client; it returns when ctx ends.
func (c *Client) Heal(ctx context.Context) {
	for ctx.Err() == nil {
		state, left, probing, changed := c.breaker.Watch()
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
