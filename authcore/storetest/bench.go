package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Bench measures a store's hot paths: creating a ticket, and the four
// transitions of a login (scan, confirm, redeem) with the reads before
// them, as the core does them.
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
			for i, to := range []authcore.State{authcore.StateScanned, authcore.StateConfirmed, authcore.StateRedeemed} {
				if _, err := s.Ticket(ctx, tk.ID); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: uint64(i + 1), To: to, ScannerID: "u1", Now: now}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
