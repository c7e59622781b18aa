package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/sms"
)

// NewMailbox makes an empty sms.Mailbox for one test, on the real clock.
type NewMailbox func(t *testing.T) sms.Mailbox

// RunMailbox is the conformance suite of sms.Mailbox, the sandbox's SMS
// messages.
func RunMailbox(t *testing.T, newBox NewMailbox) {
	t.Run("Order", func(t *testing.T) { testMailboxOrder(t, newBox) })
	t.Run("Expiry", func(t *testing.T) { testMailboxExpiry(t, newBox) })
}

func testMailboxOrder(t *testing.T, newBox NewMailbox) {
	ctx := context.Background()
	b := newBox(t)
	const phone, other = "+8613800138000", "+8613800138001"
	if got, err := b.SandboxSMS(ctx, phone); err != nil || len(got) != 0 {
		t.Fatalf("SandboxSMS of an empty mailbox: %v, %v; want none", got, err)
	}
	t0 := time.Now().Truncate(time.Millisecond).UTC()
	for i := range 5 {
		m := authcore.SMSMessage{Phone: phone, Purpose: "login", Code: fmt.Sprintf("%06d", i), SentAt: t0.Add(time.Duration(i) * time.Second)}
		if err := b.PutSandboxSMS(ctx, m, 3, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.PutSandboxSMS(ctx, authcore.SMSMessage{Phone: other, Purpose: "bind", Code: "999999", SentAt: t0}, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := b.SandboxSMS(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d messages kept, want the last 3", len(got))
	}
	for i, m := range got {
		want := authcore.SMSMessage{Phone: phone, Purpose: "login", Code: fmt.Sprintf("%06d", i+2), SentAt: t0.Add(time.Duration(i+2) * time.Second)}
		if m.Phone != want.Phone || m.Purpose != want.Purpose || m.Code != want.Code || !m.SentAt.Equal(want.SentAt) {
			t.Errorf("message %d: got %+v, want %+v", i, m, want)
		}
	}
	if got, _ := b.SandboxSMS(ctx, other); len(got) != 1 || got[0].Code != "999999" || got[0].Purpose != "bind" {
		t.Errorf("another number's messages: %+v", got)
	}
}

func testMailboxExpiry(t *testing.T, newBox NewMailbox) {
	ctx := context.Background()
	b := newBox(t)
	const phone = "+8613800138002"
	if err := b.PutSandboxSMS(ctx, authcore.SMSMessage{Phone: phone, Purpose: "login", Code: "123456", SentAt: time.Now()}, 20, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.SandboxSMS(ctx, phone); len(got) != 1 {
		t.Fatalf("%d messages before the TTL, want 1", len(got))
	}
	time.Sleep(400 * time.Millisecond)
	if got, err := b.SandboxSMS(ctx, phone); err != nil || len(got) != 0 {
		t.Errorf("after the TTL: %v, %v; want none", got, err)
	}
}
