package redisstore

import (
	"context"
	"encoding/hex"
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
