package hub

import (
	"context"
	"errors"

	"github.com/loginhub/loginhub/authcore"
)

// Wait is the long-poll fallback: it returns ticket id's view as soon as its
// version exceeds since (at once if it already does), or the current view
// when ctx ends or the hub shuts down; the end of ctx is not an error. The
// caller must have authorized the client (Tickets.AuthorizeWatch). A ticket
// that expires while waiting is noticed by the sweeper, so its expired view
// is returned then (Run must be running for that and for nudges).
//
// Errors: those of Tickets.View (KindNotFound...), a KindRateLimited
// error when the ticket has as many watches and waits on this node as it
// may have (4), and a KindInternal error when the broker cannot subscribe. Safe for concurrent use; every
// subscription it takes is released before it returns.
func (h *Hub) Wait(ctx context.Context, id string, since uint64) (authcore.View, error) {
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	ts, _, err := h.acquire(sctx, id, maxWatchers)
	cancel()
	if errors.Is(err, errCrowded) {
		return authcore.View{}, errCrowded
	}
	if err != nil {
		h.log.Warn("hub: broker subscribe failed", "err", err)
		return authcore.View{}, authcore.Wrap(authcore.KindInternal, err, "internal error")
	}
	defer h.release(ts)

	// Registered before the read: a nudge between the two wakes it.
	wt := &waiter{since: since, ch: make(chan authcore.View, 1)}
	ts.mu.Lock()
	ts.waiters = append(ts.waiters, wt)
	ts.mu.Unlock()
	defer ts.removeWaiter(wt)

	v, err := h.cfg.Tickets.View(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			return authcore.View{}, err
		}
		return h.finalView(ctx, id, authcore.View{})
	}
	ts.mu.Lock()
	d := h.deliverLocked(ts, v) // also feeds watchers of this ticket on this node
	ts.mu.Unlock()
	h.finish(ts, d, false)

	select {
	case nv := <-wt.ch:
		return nv, nil
	case <-ctx.Done():
	case <-h.stop.Done():
	}
	return h.finalView(ctx, id, v)
}

// finalView re-reads the ticket once more when a Wait gives up (a nudge may
// have been lost), falling back to the last view read.
func (h *Hub) finalView(ctx context.Context, id string, last authcore.View) (authcore.View, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalRead)
	defer cancel()
	v, err := h.cfg.Tickets.View(rctx, id)
	if err != nil {
		if last.Version == 0 {
			return authcore.View{}, err
		}
		return last, nil
	}
	return v, nil
}
