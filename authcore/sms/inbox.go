// Package sms holds loginhub's SMS senders. Aliyun (Dysmsapi SendSms) and
// Tencent (SMS API 3.0 SendSms) send codes for real: one request per code,
// bounded by a timeout and never repeated, because a request that reached
// the provider (a timed-out one included) may have sent the message. Their
// refusals map to domain errors: the provider's own per-number limit is
// KindRateLimited, a number it will not serve KindInvalid, anything else
// KindUpstreamUnavailable; the provider's text is logged, never returned,
// and neither the code, the full number nor a secret is ever logged. Inbox
// is the sandbox's: it keeps codes for the sandbox to show instead of
// sending them.
package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// What a sandbox keeps: nobody reads a code after a day, and a sandbox
// open to the network must not grow without end.
const (
	MailboxKept = 20             // messages per number
	MailboxTTL  = 24 * time.Hour // after a number's last message
)

// Mailbox keeps the sandbox's messages in the hub's store, so that every
// node of a sandbox cluster shows the same ones. memstore.Store and
// redisstore.Store implement it; both pass authcore/storetest.RunMailbox.
type Mailbox interface {
	// PutSandboxSMS appends m to the messages of m.Phone, keeping the last
	// keep of them, and keeps the number's messages for ttl after m.
	PutSandboxSMS(ctx context.Context, m authcore.SMSMessage, keep int, ttl time.Duration) error
	// SandboxSMS returns the kept messages of phone, oldest first, or none.
	SandboxSMS(ctx context.Context, phone string) ([]authcore.SMSMessage, error)
}

// Message is a code as the sandbox shows it.
type Message struct {
	Code    string    `json:"code"`
	Purpose string    `json:"purpose"`
	SentAt  time.Time `json:"sent_at"`
}

// Inbox is the sandbox SMS gateway: SendCode keeps each message in the
// Mailbox and Messages reads them back, for GET /sandbox/sms and the phone
// simulator. It is safe for concurrent use.
type Inbox struct {
	box Mailbox
}

var _ authcore.SMSSender = (*Inbox)(nil)

// NewInbox returns an Inbox keeping messages in box.
func NewInbox(box Mailbox) (*Inbox, error) {
	if box == nil {
		return nil, errors.New("sms: an Inbox needs a Mailbox")
	}
	return &Inbox{box: box}, nil
}

// SendCode implements authcore.SMSSender: the message is kept, never sent.
func (b *Inbox) SendCode(ctx context.Context, m authcore.SMSMessage) error {
	if err := b.box.PutSandboxSMS(ctx, m, MailboxKept, MailboxTTL); err != nil {
		return fmt.Errorf("sms: sandbox inbox: %w", err)
	}
	return nil
}

// Messages returns the messages of an E.164 number sent in the last
// MailboxTTL before now, oldest first (never nil).
func (b *Inbox) Messages(ctx context.Context, phone string, now time.Time) ([]Message, error) {
	kept, err := b.box.SandboxSMS(ctx, phone)
	if err != nil {
		return nil, fmt.Errorf("sms: sandbox inbox: %w", err)
	}
	out := []Message{}
	for _, m := range kept {
		if now.Sub(m.SentAt) < MailboxTTL {
			out = append(out, Message{Code: m.Code, Purpose: m.Purpose, SentAt: m.SentAt.UTC()})
		}
	}
	return out, nil
}
