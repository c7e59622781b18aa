package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/redis/go-redis/v9"
)

// UpsertIdentity implements authcore.UserStore.
//
// The user, identity and unionid keys live in different Cluster slots, so
// no script can cover them; this is a sequence of single-key steps, each
// atomic, arranged so that concurrent logins converge:
//
//   - Keys are claimed with SET NX GET: one caller wins, the others learn
//     the winner in the same command and use it.
//   - A new user's hash is written before any key points at it, so whoever
//     follows a claim finds the user; a user whose claims all failed is
//     deleted, which is safe because nothing ever pointed at it.
//   - The unionid is claimed before the identity: two identities of one
//     person (two apps of one Open Platform account) logging in for the
//     first time at once end up with the same user.
//   - As in memstore, the unionid then follows the identity's user.
//
// The one interleaving memstore cannot produce: a login of this identity
// without its unionid creates a user between our unionid claim and our
// identity claim. The identity's user wins and the unionid is moved to it;
// our user is kept (another identity may have linked to it meanwhile), at
// worst as an unreferenced record.
//
// The last step records the identity and unionid keys in the user's link
// set (<user>:ids), for EraseUser. A link to a user that is gone (an
// erasure raced this login, or was interrupted) is deleted, if it still
// points there, and the upsert starts over: the identity gets a new user.
func (s *Store) UpsertIdentity(ctx context.Context, id authcore.Identity, p authcore.Profile, newUser authcore.User) (authcore.User, bool, error) {
	var (
		u       authcore.User
		created bool
		err     error
	)
	for range upsertAttempts {
		u, created, err = s.upsertIdentity(ctx, id, p, newUser)
		var gone errUserGone
		if !errors.As(err, &gone) {
			break
		}
		links := []string{s.identityKey(id)}
		if id.UnionID != "" {
			links = append(links, s.unionKey(id.UnionID))
		}
		for _, link := range links {
			if uerr := unlinkScript.Run(ctx, s.c, []string{link}, gone.uid).Err(); uerr != nil {
				return authcore.User{}, false, fmt.Errorf("redisstore: upsert %s identity: unlink from erased user: %w", id.Provider, uerr)
			}
		}
	}
	if err != nil && !isOutcome(err) {
		return authcore.User{}, false, fmt.Errorf("redisstore: upsert %s identity: %w", id.Provider, err)
	}
	return u, created, err
}

// upsertAttempts bounds how often UpsertIdentity starts over after finding
// a link to an erased user.
const upsertAttempts = 3

// errUserGone: a link points at a user that does not exist (any more).
type errUserGone struct{ uid string }

func (e errUserGone) Error() string { return "identity links to missing user " + e.uid }

func (s *Store) upsertIdentity(ctx context.Context, id authcore.Identity, p authcore.Profile, newUser authcore.User) (authcore.User, bool, error) {
	if strings.Contains(id.Provider, ":") {
		return authcore.User{}, false, errors.New("provider name contains ':'")
	}
	ik, uk := s.identityKey(id), ""
	if id.UnionID != "" {
		uk = s.unionKey(id.UnionID)
	}

	// One round trip reads both links.
	var identCmd, unionCmd *redis.StringCmd
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		identCmd = p.Get(ctx, ik)
		if uk != "" {
			unionCmd = p.Get(ctx, uk)
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return authcore.User{}, false, err
		}
	}
	uid, unionOwner := identCmd.Val(), ""
	if unionCmd != nil {
		unionOwner = unionCmd.Val()
	}
	var err error

	switch {
	case uid != "":
	case unionOwner != "":
		// Another identity of the same person: link this one to its user.
		if uid, err = s.claim(ctx, ik, unionOwner); err != nil {
			return authcore.User{}, false, err
		}
	default:
		var created bool
		uid, unionOwner, created, err = s.createUser(ctx, id, ik, uk, newUser)
		if err != nil {
			return authcore.User{}, false, err
		}
		if created {
			return newUser, true, nil
		}
	}
	links := []string{ik}
	if uk != "" {
		links = append(links, uk)
		if unionOwner != uid {
			if err := s.c.Set(ctx, uk, uid, 0).Err(); err != nil {
				return authcore.User{}, false, err
			}
		}
	}
	return s.updateUser(ctx, uid, p, identityNote(id, time.Now()), links)
}

// createUser stores nu and claims the unionid (if any) and the identity for
// it. It returns the user that owns the identity in the end, the unionid's
// owner, and whether that is nu.
func (s *Store) createUser(ctx context.Context, id authcore.Identity, ik, uk string, nu authcore.User) (uid, unionOwner string, created bool, err error) {
	key, linksKey := s.userKey(nu.ID), s.userLinksKey(nu.ID)
	links := []any{ik}
	if uk != "" {
		links = append(links, uk)
	}
	// The links are recorded before they are claimed: a name in the set
	// may turn out to point elsewhere, which EraseUser checks.
	if _, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		note := identityNote(id, nu.CreatedAt)
		p.HSet(ctx, key, "n", nu.Nickname, "a", nu.AvatarURL, "c", encodeTime(nu.CreatedAt), note[0], note[1], notedField, "1")
		p.SAdd(ctx, linksKey, links...)
		return nil
	}); err != nil {
		return "", "", false, err
	}
	drop := func() error { return s.c.Del(ctx, key, linksKey).Err() }
	if uk != "" {
		if unionOwner, err = s.claim(ctx, uk, nu.ID); err != nil {
			return "", "", false, err
		}
		if unionOwner != nu.ID {
			// Another login of this person won; nothing points at our user.
			if err := drop(); err != nil {
				return "", "", false, err
			}
			uid, err = s.claim(ctx, ik, unionOwner)
			return uid, unionOwner, false, err
		}
	}
	if uid, err = s.claim(ctx, ik, nu.ID); err != nil {
		return "", "", false, err
	}
	if uid == nu.ID {
		// Ours, even if a concurrent login that followed our unionid linked it.
		return uid, unionOwner, true, nil
	}
	if uk == "" {
		// A concurrent login of this identity won; nothing points at our user.
		return uid, unionOwner, false, drop()
	}
	// Our user keeps the unionid but not the identity.
	return uid, unionOwner, false, s.c.HDel(ctx, key, identityField(id)).Err()
}

// claim sets key to val unless it exists, and returns its value in the end.
func (s *Store) claim(ctx context.Context, key, val string) (string, error) {
	old, err := s.c.SetArgs(ctx, key, val, redis.SetArgs{Mode: "NX", Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return val, nil
	case err != nil:
		return "", err
	}
	return old, nil
}

// updateUser records links (key names) in the user's link set, and note
// (identityNote; none if empty) in the user hash unless the identity is
// noted already, applies the non-empty fields of p and returns the user,
// or errUserGone.
func (s *Store) updateUser(ctx context.Context, uid string, p authcore.Profile, note [2]string, links []string) (authcore.User, bool, error) {
	args := []any{p.Nickname, p.AvatarURL, note[0], note[1]}
	for _, l := range links {
		args = append(args, l)
	}
	reply, err := updateUserScript.Run(ctx, s.c, []string{s.userKey(uid), s.userLinksKey(uid)}, args...).Result()
	if err != nil {
		return authcore.User{}, false, err
	}
	m, err := pairs(reply)
	if err != nil {
		return authcore.User{}, false, err
	}
	if len(m) == 0 {
		return authcore.User{}, false, errUserGone{uid}
	}
	u, err := decodeUser(uid, m)
	return u, false, err
}

// notedField, set in a user hash, says that every identity of the user is
// noted: the user was made, or Identities has noted the identities of its
// link set, since identities were noted.
const notedField = "iv"

// identityField is the field of the user hash that notes identity id:
// "i:<provider>:<subject>". Providers have no ':'.
func identityField(id authcore.Identity) string { return "i:" + id.Provider + ":" + id.Subject }

// identityNote is identity id's field and value in the user hash: the
// value is "<linked at, unix ms>|<unionid>".
func identityNote(id authcore.Identity, linkedAt time.Time) [2]string {
	return [2]string{identityField(id), strconv.FormatInt(linkedAt.UnixMilli(), 10) + "|" + id.UnionID}
}

// LinkIdentity implements authcore.UserStore.
//
// As in UpsertIdentity, the keys live in different slots: the user's link
// set is written first (so that erasure finds whatever is claimed next),
// then the unionid and the identity are claimed with SET NX GET (one claim
// wins a race), and last the identity is noted in the user hash. A claim
// that finds another user releases what this call claimed before it; an
// erasure that raced the link releases both.
func (s *Store) LinkIdentity(ctx context.Context, id authcore.Identity, userID string) error {
	err := s.linkIdentity(ctx, id, userID)
	if err != nil && !isOutcome(err) {
		return fmt.Errorf("redisstore: link %s identity: %w", id.Provider, err)
	}
	return err
}

func (s *Store) linkIdentity(ctx context.Context, id authcore.Identity, userID string) error {
	if strings.Contains(id.Provider, ":") {
		return errors.New("provider name contains ':'")
	}
	ik, uk := s.identityKey(id), ""
	links := []string{ik}
	if id.UnionID != "" {
		uk = s.unionKey(id.UnionID)
		links = append(links, uk)
	}
	_, _, err := s.updateUser(ctx, userID, authcore.Profile{}, [2]string{}, links)
	var gone errUserGone
	if errors.As(err, &gone) {
		return authcore.ErrNotFound
	}
	if err != nil {
		return err
	}
	release := func(keys ...string) error {
		for _, k := range keys {
			if err := unlinkScript.Run(ctx, s.c, []string{k}, userID).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var claimed []string // what this call claimed, to release on failure
	if uk != "" {
		prev, err := s.c.SetArgs(ctx, uk, userID, redis.SetArgs{Mode: "NX", Get: true}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			claimed = append(claimed, uk)
		case err != nil:
			return err
		case prev != userID:
			return authcore.ErrConflict
		}
	}
	owner, err := s.claim(ctx, ik, userID)
	if err != nil {
		return err
	}
	if owner != userID {
		return errors.Join(authcore.ErrConflict, release(claimed...))
	}
	_, _, err = s.updateUser(ctx, userID, authcore.Profile{}, identityNote(id, time.Now()), links)
	if errors.As(err, &gone) {
		return errors.Join(authcore.ErrNotFound, release(append(claimed, ik)...))
	}
	return err
}

// Identities implements authcore.UserStore: the identities noted in the
// user hash. The first time, for a user made by a version that did not
// note identities, every identity of its link set that points at the user
// and has no note is noted, as linked when the user was made and without a
// unionid, so that UnlinkIdentity counts it too (then notedField is set).
func (s *Store) Identities(ctx context.Context, userID string) ([]authcore.LinkedIdentity, error) {
	ids, err := s.identities(ctx, userID)
	if err != nil && !isOutcome(err) {
		return nil, fmt.Errorf("redisstore: identities of %s: %w", userID, err)
	}
	return ids, err
}

func (s *Store) identities(ctx context.Context, userID string) ([]authcore.LinkedIdentity, error) {
	var (
		userCmd  *redis.MapStringStringCmd
		linksCmd *redis.StringSliceCmd
	)
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		userCmd = p.HGetAll(ctx, s.userKey(userID))
		linksCmd = p.SMembers(ctx, s.userLinksKey(userID))
		return nil
	}); err != nil {
		return nil, err
	}
	m := userCmd.Val()
	if len(m) == 0 {
		return nil, authcore.ErrNotFound
	}
	identPrefix := s.prefix + ":{i:"
	for _, link := range linksCmd.Val() {
		if m[notedField] != "" {
			break
		}
		name, ok := strings.CutPrefix(link, identPrefix)
		if !ok || !strings.HasSuffix(name, "}") {
			continue
		}
		name = strings.TrimSuffix(name, "}")
		provider, subject, _ := strings.Cut(name, ":")
		id := authcore.Identity{Provider: provider, Subject: subject}
		if _, noted := m[identityField(id)]; noted {
			continue
		}
		owner, err := s.c.Get(ctx, link).Result()
		if errors.Is(err, redis.Nil) || err == nil && owner != userID {
			continue // a stale name
		}
		if err != nil {
			return nil, err
		}
		created, _ := decodeTime(m["c"])
		if _, _, err := s.updateUser(ctx, userID, authcore.Profile{}, identityNote(id, created), nil); err != nil {
			var gone errUserGone
			if errors.As(err, &gone) {
				return nil, authcore.ErrNotFound
			}
			return nil, err
		}
		note := identityNote(id, created)
		m[note[0]] = note[1]
	}
	if m[notedField] == "" {
		if _, _, err := s.updateUser(ctx, userID, authcore.Profile{}, [2]string{notedField, "1"}, nil); err != nil {
			var gone errUserGone
			if errors.As(err, &gone) {
				return nil, authcore.ErrNotFound
			}
			return nil, err
		}
	}
	var out []authcore.LinkedIdentity
	for f, v := range m {
		rest, ok := strings.CutPrefix(f, "i:")
		if !ok {
			continue
		}
		provider, subject, _ := strings.Cut(rest, ":")
		at, union, _ := strings.Cut(v, "|")
		ms, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("corrupt note %q", f)
		}
		out = append(out, authcore.LinkedIdentity{
			Identity: authcore.Identity{Provider: provider, Subject: subject, UnionID: union},
			LinkedAt: time.UnixMilli(ms),
		})
	}
	authcore.SortIdentities(out)
	return out, nil
}

// UnlinkIdentity implements authcore.UserStore: one script forgets the
// identity's note in the user hash (refusing the last; an identity without
// a note is noted first, as Identities does), then the identity
// key, its unionid key when no other identity of the user has that
// unionid, and a WeChat identity's session_key are deleted if they still
// point at the user.
func (s *Store) UnlinkIdentity(ctx context.Context, id authcore.Identity, userID string) error {
	run := func() ([]string, error) {
		reply, err := unlinkIdentityScript.Run(ctx, s.c, []string{s.userKey(userID)}, identityField(id)).StringSlice()
		return reply, outcome(err, "unlink identity")
	}
	reply, err := run()
	if err == authcore.ErrNotFound {
		// Perhaps linked before identities were noted: note them, try again.
		if _, err = s.Identities(ctx, userID); err != nil {
			return err
		}
		reply, err = run()
	}
	if err != nil {
		return err
	}
	if len(reply) != 2 {
		return fmt.Errorf("redisstore: unlink identity: unexpected reply %q", reply)
	}
	keys := []string{s.identityKey(id)}
	if union, shared := reply[0], reply[1]; union != "" && shared == "0" {
		keys = append(keys, s.unionKey(union))
	}
	for _, k := range keys {
		if err := unlinkScript.Run(ctx, s.c, []string{k}, userID).Err(); err != nil {
			return fmt.Errorf("redisstore: unlink identity: %w", err)
		}
	}
	if id.Provider == "wechat" {
		if err := s.c.Del(ctx, s.sessionKeyKey(id.Subject)).Err(); err != nil {
			return fmt.Errorf("redisstore: unlink identity: forget session key: %w", err)
		}
	}
	return nil
}

// User implements authcore.UserStore.
func (s *Store) User(ctx context.Context, id string) (authcore.User, error) {
	m, err := s.c.HGetAll(ctx, s.userKey(id)).Result()
	if err != nil {
		return authcore.User{}, fmt.Errorf("redisstore: user %s: %w", id, err)
	}
	if len(m) == 0 {
		return authcore.User{}, authcore.ErrNotFound
	}
	u, err := decodeUser(id, m)
	if err != nil {
		return authcore.User{}, fmt.Errorf("redisstore: user %s: %w", id, err)
	}
	return u, nil
}

// PutSessionKey implements authcore.UserStore: one SET PXAT, replacing the
// last key of openid; an expiry already past deletes it.
func (s *Store) PutSessionKey(ctx context.Context, openid, sealed string, expiresAt time.Time) error {
	key := s.sessionKeyKey(openid)
	var err error
	if ms := expiresAt.UnixMilli(); expiresAt.IsZero() || ms <= 0 || !expiresAt.After(time.Now()) {
		err = s.c.Del(ctx, key).Err()
	} else {
		err = s.c.Do(ctx, "SET", key, sealed, "PXAT", ms).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: put session key: %w", err)
	}
	return nil
}

// SessionKey implements authcore.UserStore.
func (s *Store) SessionKey(ctx context.Context, openid string) (string, error) {
	k, err := s.c.Get(ctx, s.sessionKeyKey(openid)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", authcore.ErrNotFound
	case err != nil:
		return "", fmt.Errorf("redisstore: session key: %w", err)
	}
	return k, nil
}
