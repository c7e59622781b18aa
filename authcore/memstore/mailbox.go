package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// mailbox is one number's sandbox messages, oldest first.
type mailbox struct {
	msgs  []authcore.SMSMessage
	until time.Time
}

// PutSandboxSMS implements sms.Mailbox.
func (s *Store) PutSandboxSMS(_ context.Context, m authcore.SMSMessage, keep int, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	box := s.mailboxes[m.Phone]
	box.msgs = append(box.msgs, m)
	if len(box.msgs) > keep {
		box.msgs = slices.Clone(box.msgs[len(box.msgs)-keep:])
	}
	box.until = now.Add(ttl)
	s.mailboxes[m.Phone] = box
	return nil
}

// SandboxSMS implements sms.Mailbox.
func (s *Store) SandboxSMS(_ context.Context, phone string) ([]authcore.SMSMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	box, ok := s.mailboxes[phone]
	if !ok || !s.now().Before(box.until) {
		return nil, nil
	}
	return slices.Clone(box.msgs), nil
}
