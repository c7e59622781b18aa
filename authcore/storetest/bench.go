package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Bench measures a store's hot paths: creating a ticket, and a whole login
// as the core makes it: the phone's scan and confirm (TransitionAs), the
// desktop's read of the ticket and its redeem with the new session
// (RedeemTicket).
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
	now := time.Now()
	u := newUser(b, s, "bench", "Bench", now)
	b.Run("Login", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec, err := s.Ticket(ctx, confirm(b, s, u, newTicket(now), now).ID)
			if err != nil {
				b.Fatal(err)
			}
			sess, _, _ := newSession(now, u.ID)
			if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: rec.ID, FromVersion: rec.Version, Session: sess, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
