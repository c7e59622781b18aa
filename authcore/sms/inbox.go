// Package sms holds loginhub's SMS senders. Inbox is the sandbox's: it
// keeps codes for the sandbox to show instead of sending them.
package sms

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Bounds of an Inbox: a sandbox open to the network must not grow without
// end, and nobody reads a code after a day.
const (
	inboxPerNumber = 20
	inboxNumbers   = 10000
	inboxKeep      = 24 * time.Hour
)

// Message is a code as the sandbox shows it.
type Message struct {
	Code    string    `json:"code"`
	Purpose string    `json:"purpose"`
	SentAt  time.Time `json:"sent_at"`
}

// Inbox is the sandbox SMS gateway: SendCode keeps a message per number
// and Messages reads them back, for GET /sandbox/sms and the phone
// simulator. It keeps the last 20 messages of a number for a day, for at
// most 10,000 numbers (the oldest number is dropped first). Its zero value
// is ready; it is safe for concurrent use. Messages live in this process.
type Inbox struct {
	mu    sync.Mutex
	boxes map[string][]Message // by E.164 number, oldest first
}

var _ authcore.SMSSender = (*Inbox)(nil)

// SendCode implements authcore.SMSSender: the message is kept, never sent.
func (b *Inbox) SendCode(_ context.Context, m authcore.SMSMessage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.boxes == nil {
		b.boxes = map[string][]Message{}
	}
	if _, ok := b.boxes[m.Phone]; !ok && len(b.boxes) >= inboxNumbers {
		b.dropOldestLocked()
	}
	box := append(b.boxes[m.Phone], Message{Code: m.Code, Purpose: m.Purpose, SentAt: m.SentAt.UTC()})
	if len(box) > inboxPerNumber {
		box = slices.Clone(box[len(box)-inboxPerNumber:])
	}
	b.boxes[m.Phone] = box
	return nil
}

// Messages returns the messages of an E.164 number sent in the last day
// before now, oldest first (never nil).
func (b *Inbox) Messages(phone string, now time.Time) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []Message{}
	for _, m := range b.boxes[phone] {
		if now.Sub(m.SentAt) < inboxKeep {
			out = append(out, m)
		}
	}
	return out
}

// dropOldestLocked drops the number whose last message is the oldest.
func (b *Inbox) dropOldestLocked() {
	var oldest string
	var at time.Time
	for p, box := range b.boxes {
		if last := box[len(box)-1].SentAt; oldest == "" || last.Before(at) {
			oldest, at = p, last
		}
	}
	delete(b.boxes, oldest)
}
