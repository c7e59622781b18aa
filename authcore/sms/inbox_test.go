package sms_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/authcore/sms"
)

func TestInbox(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := t0
	b, err := sms.NewInbox(memstore.New(nil, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	const phone = "+8613800138000"
	if got, err := b.Messages(ctx, phone, t0); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Messages of an empty inbox: %#v, %v; want an empty, non-nil slice", got, err)
	}
	for i := range 25 {
		now = t0.Add(time.Duration(i) * time.Minute)
		m := authcore.SMSMessage{Phone: phone, Purpose: "login", Code: fmt.Sprintf("%06d", i), SentAt: now}
		if err := b.SendCode(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	b.SendCode(ctx, authcore.SMSMessage{Phone: "+8613800138001", Purpose: "login", Code: "999999", SentAt: now})

	got, err := b.Messages(ctx, phone, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != sms.MailboxKept || got[0].Code != "000005" || got[19].Code != "000024" {
		t.Fatalf("got %d messages (%v … %v), want the last 20, oldest first", len(got), got[0], got[len(got)-1])
	}
	if got[0].Purpose != "login" || !got[0].SentAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("first message %+v", got[0])
	}
	// A day after a message it is no longer shown.
	if got, _ := b.Messages(ctx, phone, t0.Add(24*time.Hour+10*time.Minute)); len(got) != 14 {
		t.Errorf("a day on: %d messages, want the 14 younger than a day", len(got))
	}
	if got, _ := b.Messages(ctx, "+8613800138001", now); len(got) != 1 || got[0].Code != "999999" {
		t.Errorf("another number's inbox: %+v", got)
	}
	if _, err := sms.NewInbox(nil); err == nil {
		t.Error("NewInbox(nil) accepted")
	}
}
