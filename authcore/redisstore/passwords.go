package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/loginhub/loginhub/authcore"
	"github.com/redis/go-redis/v9"
)

var _ authcore.PasswordStore = (*Store)(nil)

// UserByIdentity implements authcore.UserStore: the identity's link, then
// its user (two slots, two reads).
func (s *Store) UserByIdentity(ctx context.Context, id authcore.Identity) (authcore.User, error) {
	uid, err := s.c.Get(ctx, s.identityKey(id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.User{}, authcore.ErrNotFound
	case err != nil:
		return authcore.User{}, fmt.Errorf("redisstore: user by %s identity: %w", id.Provider, err)
	}
	return s.User(ctx, uid)
}

// PasswordHash implements authcore.PasswordStore.
func (s *Store) PasswordHash(ctx context.Context, userID string) (string, error) {
	h, err := s.c.Get(ctx, s.passwordKey(userID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", authcore.ErrNotFound
	case err != nil:
		return "", fmt.Errorf("redisstore: password of %s: %w", userID, err)
	}
	return h, nil
}

// SetPassword implements authcore.PasswordStore: the session index is
// read, then set_password.lua compares and sets the hash and deletes the
// sessions the index named, except the kept family's, in one step (all in
// the user's slot); if a login added a session meanwhile, it starts over.
func (s *Store) SetPassword(ctx context.Context, c authcore.PasswordChange) error {
	fixed := []string{s.userKey(c.UserID), s.passwordKey(c.UserID), s.sessionIndexKey(c.UserID)}
	keep := s.sessionKey(authcore.TokenRef{UserID: c.UserID, Family: c.KeepFamily})
	for range eraseRounds {
		sessions, err := s.c.ZRange(ctx, s.sessionIndexKey(c.UserID), 0, -1).Result()
		if err != nil {
			return fmt.Errorf("redisstore: set password: read session index: %w", err)
		}
		reply, err := setPasswordScript.Run(ctx, s.c, append(slices.Clip(fixed), sessions...), c.Old, c.New, keep).Text()
		if err != nil {
			return outcome(err, "set password")
		}
		if reply == "done" {
			return nil
		}
	}
	return errors.New("redisstore: set password: logins keep adding sessions; try again")
}
