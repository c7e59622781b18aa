package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// PutCode implements authcore.CodeStore with put_code.lua. The key expires
// with the code.
func (s *Store) PutCode(ctx context.Context, c authcore.OneTimeCode) error {
	err := putCodeScript.Run(ctx, s.c, []string{s.codeKey(c.Phone, c.Purpose)},
		hex.EncodeToString(c.Hash[:]), c.ExpiresAt.UnixMilli(), c.Tries).Err()
	if err != nil {
		return fmt.Errorf("redisstore: put code: %w", err)
	}
	return nil
}

// CheckCode implements authcore.CodeStore with check_code.lua, one atomic
// step per try. Expiry is judged at now, not by the Redis clock.
func (s *Store) CheckCode(ctx context.Context, phone, purpose string, hash [32]byte, now time.Time) (bool, error) {
	n, err := checkCodeScript.Run(ctx, s.c, []string{s.codeKey(phone, purpose)},
		hex.EncodeToString(hash[:]), now.UnixMilli()).Int64()
	if err != nil {
		return false, fmt.Errorf("redisstore: check code: %w", err)
	}
	return n == 1, nil
}

// sandboxMessage is a sandbox SMS as the store keeps it; the number is its
// key's.
type sandboxMessage struct {
	Code    string `json:"c"`
	Purpose string `json:"p"`
	SentAt  int64  `json:"t"` // unix ms
}

// PutSandboxSMS implements sms.Mailbox with put_sandbox_sms.lua.
func (s *Store) PutSandboxSMS(ctx context.Context, m authcore.SMSMessage, keep int, ttl time.Duration) error {
	raw, err := json.Marshal(sandboxMessage{Code: m.Code, Purpose: m.Purpose, SentAt: m.SentAt.UnixMilli()})
	if err != nil {
		return err
	}
	err = putSandboxSMSScript.Run(ctx, s.c, []string{s.mailboxKey(m.Phone)}, raw, max(keep, 1), ceilMillis(ttl)).Err()
	if err != nil {
		return fmt.Errorf("redisstore: put sandbox sms: %w", err)
	}
	return nil
}

// SandboxSMS implements sms.Mailbox: one LRANGE.
func (s *Store) SandboxSMS(ctx context.Context, phone string) ([]authcore.SMSMessage, error) {
	raws, err := s.c.LRange(ctx, s.mailboxKey(phone), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: sandbox sms: %w", err)
	}
	out := make([]authcore.SMSMessage, 0, len(raws))
	for _, raw := range raws {
		var m sandboxMessage
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, fmt.Errorf("redisstore: sandbox sms: corrupt message: %w", err)
		}
		out = append(out, authcore.SMSMessage{Phone: phone, Code: m.Code, Purpose: m.Purpose, SentAt: time.UnixMilli(m.SentAt).UTC()})
	}
	return out, nil
}
