package sms_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/sms"
)

func TestInbox(t *testing.T) {
	var b sms.Inbox // the zero value is ready
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	const phone = "+8613800138000"
	if got := b.Messages(phone, t0); got == nil || len(got) != 0 {
		t.Fatalf("Messages of an empty inbox: %#v, want an empty, non-nil slice", got)
	}
	for i := range 25 {
		m := authcore.SMSMessage{Phone: phone, Purpose: "login", Code: fmt.Sprintf("%06d", i), SentAt: t0.Add(time.Duration(i) * time.Minute)}
		if err := b.SendCode(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	b.SendCode(ctx, authcore.SMSMessage{Phone: "+8613800138001", Purpose: "login", Code: "999999", SentAt: t0})

	got := b.Messages(phone, t0.Add(time.Hour))
	if len(got) != 20 || got[0].Code != "000005" || got[19].Code != "000024" {
		t.Fatalf("got %d messages (%v … %v), want the last 20, oldest first", len(got), got[0], got[len(got)-1])
	}
	if got[0].Purpose != "login" || !got[0].SentAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("first message %+v", got[0])
	}
	// A day after a message it is no longer shown.
	if got := b.Messages(phone, t0.Add(24*time.Hour+10*time.Minute)); len(got) != 14 {
		t.Errorf("a day on: %d messages, want the 14 younger than a day", len(got))
	}
	if got := b.Messages("+8613800138001", t0); len(got) != 1 || got[0].Code != "999999" {
		t.Errorf("another number's inbox: %+v", got)
	}
}

// TestInboxBounded: past 10 000 numbers the least recently used goes.
func TestInboxBounded(t *testing.T) {
	var b sms.Inbox
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 10_001 {
		b.SendCode(ctx, authcore.SMSMessage{Phone: fmt.Sprintf("+86138%08d", i), Purpose: "login", Code: "123456", SentAt: t0.Add(time.Duration(i) * time.Second)})
	}
	if got := b.Messages("+8613800000000", t0.Add(3*time.Hour)); len(got) != 0 {
		t.Errorf("the oldest number kept %d messages past the bound", len(got))
	}
	if got := b.Messages("+8613800010000", t0.Add(3*time.Hour)); len(got) != 1 {
		t.Errorf("the newest number has %d messages, want 1", len(got))
	}
}
