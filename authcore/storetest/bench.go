package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Bench measures a store's hot paths: creating a ticket, and the three
// transitions of a login as the core makes them: scan and confirm in one
// call each (TransitionFrom), redeem as a read and a compare-and-set; and
// a whole login, session included, with its redeem made one call at a time
// or, when the store can (authcore.RedeemStore), in one.
func Bench(b *testing.B, s authcore.Store) {
	ctx := context.Background()
	b.Run("CreateTicket", func(b *testing.B) {
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.CreateTicket(ctx, newTicket(now), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoginTransitions", func(b *testing.B) {
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			tk := confirmedTicket(b, s, "u1", now)
			rec, err := s.Ticket(ctx, tk.ID)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: rec.Version, To: authcore.StateRedeemed, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A whole login as the core makes it: the three transitions plus the
	// session, one call at a time (User, CreateSession, Transition) and, when
	// the store can, in one call (RedeemTicket).
	now := time.Now()
	u := newUser(b, s, "bench", "Bench", now)
	confirmed := func(b *testing.B) authcore.TicketRecord {
		rec, err := s.Ticket(ctx, confirmedTicket(b, s, u.ID, now).ID)
		if err != nil {
			b.Fatal(err)
		}
		return rec
	}
	b.Run("LoginRedeemOneByOne", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := confirmed(b)
			if _, err := s.User(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
			sess, _, _ := newSession(now, u.ID)
			if err := s.CreateSession(ctx, sess); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, authcore.Transition{ID: rec.ID, FromVersion: rec.Version, To: authcore.StateRedeemed, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
	rs, ok := s.(authcore.RedeemStore)
	if !ok {
		return
	}
	b.Run("LoginRedeemOneCall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := confirmed(b)
			sess, _, _ := newSession(now, u.ID)
			if _, _, err := rs.RedeemTicket(ctx, authcore.Transition{ID: rec.ID, FromVersion: rec.Version, To: authcore.StateRedeemed, Now: now}, sess); err != nil {
				b.Fatal(err)
			}
		}
	})
}
