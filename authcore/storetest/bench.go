package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Bench measures a store's hot paths: creating a ticket, and the three
// transitions of a login as the core makes them: scan and confirm in one
// call each (TransitionFrom), redeem as a read and a compare-and-set.
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
			tk := newTicket(now)
			if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
				b.Fatal(err)
			}
			for _, st := range []authcore.StateTransition{
				{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, ScannerID: "u1", Now: now},
				{ID: tk.ID, From: authcore.StateScanned, Owner: "u1", To: authcore.StateConfirmed, Now: now},
			} {
				if _, moved, err := s.TransitionFrom(ctx, st); !moved || err != nil {
					b.Fatalf("%s: moved %v, %v", st.To, moved, err)
				}
			}
			rec, err := s.Ticket(ctx, tk.ID)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: rec.Version, To: authcore.StateRedeemed, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
