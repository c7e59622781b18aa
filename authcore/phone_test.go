package authcore_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestPhoneAnswers pins what Scan, Confirm and Cancel answer, and what they
// leave stored, for every state a ticket can be in, by its owner and by
// another account: the kinds and messages phones see are part of the API.
func TestPhoneAnswers(t *testing.T) {
	ctx := context.Background()
	states := []struct {
		name  string
		setup func(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket)
	}{
		{"pending", func(*testing.T, *fixture, authcore.Principal, authcore.NewTicket) {}},
		{"scanned", scanned},
		{"confirmed", confirmed},
		{"cancelled", func(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket) {
			scanned(t, f, alice, nt)
			must(t, "cancel", func() error { _, err := f.svc.Cancel(ctx, f.token(alice), nt.ID); return err })
		}},
		{"redeemed", func(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket) {
			confirmed(t, f, alice, nt)
			must(t, "redeem", func() error {
				_, err := f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
				return err
			})
		}},
		{"pending, expired", func(t *testing.T, f *fixture, _ authcore.Principal, _ authcore.NewTicket) {
			f.clock.Advance(authcore.DefaultTicketTTL)
		}},
		{"scanned, expired", func(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket) {
			scanned(t, f, alice, nt)
			f.clock.Advance(authcore.DefaultTicketTTL)
		}},
		{"confirmed, expired", func(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket) {
			confirmed(t, f, alice, nt)
			f.clock.Advance(authcore.DefaultTicketTTL)
		}},
	}
	type action struct {
		name string
		do   func(f *fixture, p authcore.Principal, nt authcore.NewTicket) (string, error)
	}
	actions := []action{
		{"scan", func(f *fixture, p authcore.Principal, nt authcore.NewTicket) (string, error) {
			r, err := f.svc.Scan(ctx, f.token(p), nt.Ticket)
			return fmt.Sprintf("%s v%d requester %s", r.State, r.Version, r.Requester.IP), err
		}},
		{"confirm", func(f *fixture, p authcore.Principal, nt authcore.NewTicket) (string, error) {
			r, err := f.svc.Confirm(ctx, f.token(p), nt.ID)
			return fmt.Sprintf("%s v%d", r.State, r.Version), err
		}},
		{"cancel", func(f *fixture, p authcore.Principal, nt authcore.NewTicket) (string, error) {
			r, err := f.svc.Cancel(ctx, f.token(p), nt.ID)
			return fmt.Sprintf("%s v%d", r.State, r.Version), err
		}},
	}
	var out strings.Builder
	for _, st := range states {
		for _, a := range actions {
			for _, who := range []string{"owner", "other"} {
				f := newFixture(t, authcore.IPStrict)
				alice, bob := f.phone(t, "o-alice", "Alice"), f.phone(t, "o-bob", "Bob")
				nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
				if err != nil {
					t.Fatal(err)
				}
				st.setup(t, f, alice, nt)
				p := alice
				if who == "other" {
					p = bob
				}
				got, err := a.do(f, p, nt)
				if err != nil {
					got = fmt.Sprintf("%s: %s", authcore.KindOf(err).Code(), err)
				}
				v, err := f.svc.View(ctx, nt.ID)
				if err != nil {
					t.Fatalf("view: %v", err)
				}
				fmt.Fprintf(&out, "%-18s | %-7s by %s | %-60s | then %s v%d\n", st.name, a.name, who, got, v.State, v.Version)
			}
		}
	}
	// A ticket that is not (or no longer) in the store.
	f := newFixture(t, authcore.IPStrict)
	alice := f.phone(t, "o-alice", "Alice")
	id := authcore.NewTicketID()
	signed, err := f.signer.Sign(id, f.clock.Now().Add(authcore.DefaultTicketTTL))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range actions {
		got, err := a.do(f, alice, authcore.NewTicket{ID: id, Ticket: signed})
		if err != nil {
			got = fmt.Sprintf("%s: %s", authcore.KindOf(err).Code(), err)
		}
		fmt.Fprintf(&out, "%-18s | %-7s by %s | %s\n", "unknown", a.name, "owner", got)
	}

	path := filepath.Join("testdata", "phone_answers.golden")
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("phone answers changed:\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func scanned(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket) {
	must(t, "scan", func() error { _, err := f.svc.Scan(context.Background(), f.token(alice), nt.Ticket); return err })
}

func confirmed(t *testing.T, f *fixture, alice authcore.Principal, nt authcore.NewTicket) {
	scanned(t, f, alice, nt)
	must(t, "confirm", func() error { _, err := f.svc.Confirm(context.Background(), f.token(alice), nt.ID); return err })
}

func must(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestPhoneCallsTouchTheStoreOnce: a scan, a confirm and a cancel are one
// store call each, whether they move the ticket or are refused.
func TestPhoneCallsTouchTheStoreOnce(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice, bob := f.phone(t, "o-alice", "Alice"), f.phone(t, "o-bob", "Bob")
	nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"scan", func() error { _, err := f.svc.Scan(ctx, f.token(alice), nt.Ticket); return err }},
		{"scan again", func() error { _, err := f.svc.Scan(ctx, f.token(alice), nt.Ticket); return err }},
		{"scan by another account", func() error { _, err := f.svc.Scan(ctx, f.token(bob), nt.Ticket); return err }},
		{"cancel by another account", func() error { _, err := f.svc.Cancel(ctx, f.token(bob), nt.ID); return err }},
		{"confirm", func() error { _, err := f.svc.Confirm(ctx, f.token(alice), nt.ID); return err }},
		{"confirm again", func() error { _, err := f.svc.Confirm(ctx, f.token(alice), nt.ID); return err }},
		{"cancel after confirm", func() error { _, err := f.svc.Cancel(ctx, f.token(alice), nt.ID); return err }},
	} {
		before := f.store.calls.Load()
		c.call() // the answers are TestPhoneAnswers's business
		if got := f.store.calls.Load() - before; got != 1 {
			t.Errorf("%s: %d store calls, want 1", c.name, got)
		}
	}
}

// TestPhoneMovesNeedALiveToken: a scan, a confirm or a cancel with a token
// that is malformed, unknown, logged out, or whose user erased their
// account is refused as unauthorized, before anything else wrong with the
// request is reported, and leaves the ticket as it was.
func TestPhoneMovesNeedALiveToken(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice := f.phone(t, "o-alice", "Alice")
	loggedOut := f.token(alice)
	if err := f.svc.Logout(ctx, loggedOut); err != nil {
		t.Fatal(err)
	}
	erased := f.phone(t, "o-erased", "Erased")
	if err := f.svc.EraseMyData(ctx, erased, "req-1"); err != nil {
		t.Fatal(err)
	}
	nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	forged, _ := other.Sign(nt.ID, nt.ExpiresAt)
	tokens := map[string]string{
		"no token":          "",
		"malformed":         "not-a-token",
		"unknown":           loggedOut[:len(loggedOut)-4] + "AAAA",
		"logged out":        loggedOut,
		"of an erased user": f.token(erased),
	}
	for what, token := range tokens {
		for _, c := range []struct {
			name string
			call func() error
		}{
			{"scan", func() error { _, err := f.svc.Scan(ctx, token, nt.Ticket); return err }},
			{"scan of a forged ticket", func() error { _, err := f.svc.Scan(ctx, token, forged); return err }},
			{"scan of no ticket", func() error { _, err := f.svc.Scan(ctx, token, ""); return err }},
			{"confirm", func() error { _, err := f.svc.Confirm(ctx, token, nt.ID); return err }},
			{"confirm of no such id", func() error { _, err := f.svc.Confirm(ctx, token, "x"); return err }},
			{"cancel", func() error { _, err := f.svc.Cancel(ctx, token, nt.ID); return err }},
		} {
			err := c.call()
			wantKind(t, c.name+", token "+what, err, authcore.KindUnauthorized)
			if err != nil && !strings.Contains(err.Error(), "access token") {
				t.Errorf("%s, token %s: %v, want the token's error", c.name, what, err)
			}
		}
	}
	if v, err := f.svc.View(ctx, nt.ID); err != nil || v.Version != 1 || v.State != authcore.StatePending {
		t.Errorf("after the refused moves the ticket is %s v%d (%v), want pending v1", v.State, v.Version, err)
	}
}
