package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore"
)

// wechatProvider is the provider whose subjects are openids with a WeChat
// session_key (PutSessionKey).
const wechatProvider = "wechat"

// eraseRounds bounds how often EraseUser goes back to unlink links that
// logins added while it ran.
const eraseRounds = 8

var (
	_ authcore.PersonalDataStore = (*Store)(nil)
	_ authcore.FaceStore         = (*Store)(nil)
)

// ---- personal data (authcore.PersonalDataStore) ----

// PutPersonalData implements authcore.PersonalDataStore: HSET into the
// user's personal data hash, in a script that checks that the user exists
// (authcore.ErrNotFound if not: personal data never outlives an erasure);
// an empty value is an HDEL, which never fails.
func (s *Store) PutPersonalData(ctx context.Context, userID, field, sealed string) error {
	var err error
	if sealed == "" {
		err = s.c.HDel(ctx, s.personalDataKey(userID), field).Err()
	} else {
		err = scriptOutcome(putPersonalDataScript.Run(ctx, s.c,
			[]string{s.userKey(userID), s.personalDataKey(userID)}, field, sealed).Err())
	}
	if err != nil && !isOutcome(err) {
		return fmt.Errorf("redisstore: put personal data: %w", err)
	}
	return err
}

// PersonalData implements authcore.PersonalDataStore.
func (s *Store) PersonalData(ctx context.Context, userID string) (map[string]string, error) {
	m, err := s.c.HGetAll(ctx, s.personalDataKey(userID)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: personal data: %w", err)
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// AppendAudit implements authcore.PersonalDataStore: RPUSH of the entry's
// JSON (AuditEntry's own encoding, times in RFC 3339) and LTRIM to the
// last 1000, in one MULTI. The list has no TTL.
func (s *Store) AppendAudit(ctx context.Context, e authcore.AuditEntry) error {
	if e.UserID == "" {
		return authcore.Errorf(authcore.KindInvalid, "redisstore: audit entry without a user")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("redisstore: append audit: %w", err)
	}
	key := s.auditKey(e.UserID)
	if _, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, key, b)
		p.LTrim(ctx, key, -authcore.AuditKept, -1)
		return nil
	}); err != nil {
		return fmt.Errorf("redisstore: append audit: %w", err)
	}
	return nil
}

// Audit implements authcore.PersonalDataStore: LRANGE of the last limit
// entries. A limit of zero or less returns no entries. Times come back in
// UTC.
func (s *Store) Audit(ctx context.Context, userID string, limit int) ([]authcore.AuditEntry, error) {
	out := []authcore.AuditEntry{}
	if limit <= 0 {
		return out, nil
	}
	raw, err := s.c.LRange(ctx, s.auditKey(userID), -int64(min(limit, authcore.AuditKept)), -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: audit: %w", err)
	}
	for _, r := range raw {
		var e authcore.AuditEntry
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, fmt.Errorf("redisstore: audit of %s: corrupt entry", userID)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
	}
	return out, nil
}

// EraseUser implements authcore.PersonalDataStore. The user's links, the
// tickets it scanned and its face verifications live in other Cluster
// slots than the user, so erasure is a sequence, safe to repeat after a
// failure (the user record goes with the last user-slot step, so a retry
// still finds the links):
//
//  1. the user's session index is read, and erase_user.lua, given the
//     links already unlinked and the keys the index named, replies the
//     links of the user's link set still to unlink (ErrNotFound for an
//     unknown user), or that the index names more keys now (a login
//     meanwhile: read it again);
//  2. each link is deleted if it still points at this user (unlink.lua:
//     compare and delete, so a link that a new login of an erased identity
//     made for its new user stays), and so is the WeChat session key of
//     each wechat identity that pointed at this user or at no one;
//  3. back to 1, until nothing is left: erase_user.lua then deletes the
//     user, its link set, its personal data, its password hash, its
//     sessions and consumed marks and its indexes in one go, and replies the refs index;
//  4. each ticket the user scanned and each face verification it started
//     is deleted if it still names the user (compare and delete).
//
// A scan or a face check that races the erasure deletes its own record
// when it finds the user gone (recordScan, PutFaceVerification). The audit
// trail stays.
func (s *Store) EraseUser(ctx context.Context, userID string) error {
	err := s.eraseUser(ctx, userID)
	if err != nil && !isOutcome(err) {
		return fmt.Errorf("redisstore: erase user %s: %w", userID, err)
	}
	return err
}

func (s *Store) eraseUser(ctx context.Context, userID string) error {
	fixed := []string{s.userKey(userID), s.userLinksKey(userID), s.personalDataKey(userID),
		s.sessionIndexKey(userID), s.refsKey(userID), s.passwordKey(userID), s.loginsKey(userID)}
	var done []any
	for range eraseRounds {
		sessions, err := s.c.ZRange(ctx, s.sessionIndexKey(userID), 0, -1).Result()
		if err != nil {
			return fmt.Errorf("read session index: %w", err)
		}
		reply, err := eraseUserScript.Run(ctx, s.c, append(slices.Clip(fixed), sessions...), done...).StringSlice()
		if err = scriptOutcome(err); err != nil {
			return err
		}
		if len(reply) == 0 {
			return errors.New("erase_user.lua: empty reply")
		}
		switch status, rest := reply[0], reply[1:]; status {
		case "done":
			return s.forgetRefs(ctx, userID, rest)
		case "keys":
			continue // sessions made meanwhile: read the index again
		case "links":
			slices.Sort(rest) // deterministic order, for logs and tests
			for _, link := range rest {
				if err := s.unlink(ctx, link, userID); err != nil {
					return err
				}
				done = append(done, link)
			}
		default:
			return fmt.Errorf("erase_user.lua: unexpected reply %q", status)
		}
	}
	return errors.New("logins keep adding to the user; try again")
}

// forgetRefs deletes the records of the refs index of an erased user: the
// tickets it scanned and its face verifications, each only if it still
// names the user.
func (s *Store) forgetRefs(ctx context.Context, userID string, refs []string) error {
	for _, ref := range refs {
		kind, id, _ := strings.Cut(ref, ":")
		switch kind {
		case "t":
			if err := s.forgetTicket(ctx, id, userID); err != nil {
				return err
			}
		case "fv":
			err := scriptOutcome(takeFaceScript.Run(ctx, s.c, []string{s.faceKey(id)}, userID, time.Now().UnixMilli()).Err())
			if err != nil && err != authcore.ErrNotFound && err != authcore.ErrForbidden {
				return fmt.Errorf("forget face verification: %w", err)
			}
		}
	}
	return nil
}

// unlink deletes link if it points at userID and, for a wechat identity
// that pointed at it or at no one, the openid's session key.
func (s *Store) unlink(ctx context.Context, link, userID string) error {
	n, err := unlinkScript.Run(ctx, s.c, []string{link}, userID).Int()
	if err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	if n < 0 {
		return nil // another user's now (or never ours): theirs
	}
	if openid, ok := s.wechatOpenID(link); ok {
		if err := s.c.Del(ctx, s.sessionKeyKey(openid)).Err(); err != nil {
			return fmt.Errorf("delete session key: %w", err)
		}
	}
	return nil
}

// wechatOpenID returns the openid of a wechat identity key name.
func (s *Store) wechatOpenID(link string) (string, bool) {
	rest, ok := strings.CutPrefix(link, s.prefix+":{i:"+wechatProvider+":")
	if !ok {
		return "", false
	}
	openid, ok := strings.CutSuffix(rest, "}")
	return openid, ok && openid != ""
}

// ---- face verification (authcore.FaceStore) ----

// faceRecord is a FaceVerification as stored (the verify_id is in the key).
type faceRecord struct {
	Verifier  string `json:"v,omitempty"`
	OutSeqNo  string `json:"o"`
	CertHash  string `json:"h"`
	OpenID    string `json:"oid"`
	UserID    string `json:"u"`
	Family    string `json:"f"`
	StartedAt int64  `json:"s,omitempty"` // unix ms
	ExpiresAt int64  `json:"e"`           // unix ms
}

// PutFaceVerification implements authcore.FaceStore: one SET PXAT at
// f.ExpiresAt (kept to the millisecond); an expiry already past deletes it.
func (s *Store) PutFaceVerification(ctx context.Context, f authcore.FaceVerification) error {
	if f.VerifyID == "" || f.ExpiresAt.IsZero() || f.ExpiresAt.UnixMilli() <= 0 {
		return authcore.Errorf(authcore.KindInvalid, "redisstore: face verification without an id or expiry")
	}
	key := s.faceKey(f.VerifyID)
	var err error
	if !f.ExpiresAt.After(time.Now()) {
		err = s.c.Del(ctx, key).Err()
	} else {
		var b []byte
		b, err = json.Marshal(faceRecord{Verifier: f.Verifier, OutSeqNo: f.OutSeqNo, CertHash: f.CertHash, OpenID: f.OpenID,
			UserID: f.UserID, Family: f.Family, StartedAt: unixMilli(f.StartedAt), ExpiresAt: f.ExpiresAt.UnixMilli()})
		if err == nil {
			err = s.c.Do(ctx, "SET", key, b, "PXAT", f.ExpiresAt.UnixMilli()).Err()
		}
		if err == nil && f.UserID != "" {
			// It names the user and its openid: erasure must find it. The
			// user is not required to exist (a verification is stored for a
			// live session's user; an erasure racing it leaves an entry
			// that expires with the verification).
			err = recordRefScript.Run(ctx, s.c, []string{s.userKey(f.UserID), s.refsKey(f.UserID)},
				"fv:"+f.VerifyID, f.ExpiresAt.UnixMilli(), time.Now().UnixMilli(), "0").Err()
		}
	}
	if err != nil {
		return fmt.Errorf("redisstore: put face verification: %w", err)
	}
	return nil
}

// TakeFaceVerification implements authcore.FaceStore with take_face.lua,
// so exactly one caller, its owner, gets it. Expiry is judged by this
// process's clock, in case Redis has not reclaimed the key yet.
func (s *Store) TakeFaceVerification(ctx context.Context, verifyID, userID string) (authcore.FaceVerification, error) {
	raw, err := takeFaceScript.Run(ctx, s.c, []string{s.faceKey(verifyID)}, userID, time.Now().UnixMilli()).Text()
	if err != nil {
		return authcore.FaceVerification{}, outcome(err, "take face verification")
	}
	var r faceRecord
	if err := json.Unmarshal([]byte(raw), &r); err != nil || r.ExpiresAt <= 0 {
		return authcore.FaceVerification{}, errors.New("redisstore: take face verification: corrupt record")
	}
	f := authcore.FaceVerification{VerifyID: verifyID, Verifier: r.Verifier, OutSeqNo: r.OutSeqNo, CertHash: r.CertHash, OpenID: r.OpenID,
		UserID: r.UserID, Family: r.Family, ExpiresAt: time.UnixMilli(r.ExpiresAt).UTC()}
	if r.StartedAt > 0 {
		f.StartedAt = time.UnixMilli(r.StartedAt).UTC()
	}
	return f, nil
}

// unixMilli is t in unix ms, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// MarkSessionStepUp implements authcore.FaceStore with mark_step_up.lua.
// The time is kept to the millisecond, in the field stepUpField names.
func (s *Store) MarkSessionStepUp(ctx context.Context, ref authcore.TokenRef, method string, at time.Time) error {
	if at.IsZero() || !authcore.ValidStepUpMethod(method) {
		return authcore.Errorf(authcore.KindInvalid, "redisstore: mark session step-up: no time, or a bad method %q", method)
	}
	err := markStepUpScript.Run(ctx, s.c, []string{s.sessionKey(ref)}, hex.EncodeToString(ref.Hash[:]), at.UnixMilli(), method, stepUpField(method)).Err()
	return outcome(err, "mark session step-up")
}
