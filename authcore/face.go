package authcore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// FaceVerifier runs WeChat's face verification (authcore/wechat.Core
// implements it).
type FaceVerifier interface {
	// FaceStart asks for a verify_id for this person and WeChat user.
	FaceStart(ctx context.Context, outSeqNo, openid, name, idNumber string) (FaceStart, error)
	// FaceCheck asks how the verification went.
	FaceCheck(ctx context.Context, verifyID, outSeqNo, certHash, openid string) (FaceOutcome, error)
	// FaceCheckLegacy reads a legacy verify_result and whose it is (openid).
	// The outcome's IdentifiedAt is when the face check happened, zero if
	// WeChat did not say.
	FaceCheckLegacy(ctx context.Context, verifyResult string) (FaceOutcome, string, error)
}

// FaceStart is a started verification.
type FaceStart struct {
	VerifyID  string
	CertHash  string
	ExpiresIn time.Duration
}

// FaceOutcome is how a verification went.
type FaceOutcome struct {
	Passed   bool
	Finished bool   // false while the user has not completed it on the phone
	Reason   string // for failures: cancelled, timeout, face did not match, ...
	// IdentifiedAt is when the face check happened (legacy getinfo's
	// identify_time); zero when the answer does not say.
	IdentifiedAt time.Time
}

// FaceStarted is what the phone gets to run wx.requestFacialVerify.
type FaceStarted struct {
	VerifyID  string `json:"verify_id"`
	ExpiresIn int    `json:"expires_in"`
}

// FacePassed is the result of a passed verification: the session now
// carries amr "face" and when.
type FacePassed struct {
	Passed bool `json:"passed"`
	// IdentifyTime is when the face check happened, as WeChat reports it
	// (legacy verify_result; never after the hub's now), or when the hub
	// learnt of the pass (verify_id); the session's face_at is this time.
	IdentifyTime time.Time    `json:"identify_time"`
	Session      SessionFacts `json:"session"`
}

// faceClockSkew is how far WeChat's identify_time may lie before the
// moment the hub asked for the verify_id, or after the hub's now, and
// still be taken as the check of that verify_id: the two clocks differ,
// and identify_time has whole seconds.
const faceClockSkew = 30 * time.Second

// FieldIDNumber names the ID number in audit entries (it is never stored).
const FieldIDNumber = "id_number"

func (s *Service) faceReady(p Principal) (string, error) {
	if s.face == nil {
		return "", Errorf(KindUpstreamUnavailable, "face verification is not configured")
	}
	if p.Session.Provider != "wechat" || p.Session.Subject == "" {
		return "", Errorf(KindForbidden, "face verification needs a session from a WeChat login")
	}
	return p.Session.Subject, nil
}

// FaceVerifyID starts a face check of the caller against a name and ID
// number (a step-up for risky actions). The ID number goes to WeChat and
// is not kept, not even sealed: only the hash WeChat needs to tie the
// result to it. Errors: KindInvalid (malformed name or ID number),
// KindForbidden, KindUpstreamUnavailable.
func (s *Service) FaceVerifyID(ctx context.Context, p Principal, name, idNumber, requestID string) (FaceStarted, error) {
	openid, err := s.faceReady(p)
	if err != nil {
		return FaceStarted{}, err
	}
	outSeq := NewTicketID()
	now := s.now()
	st, err := s.face.FaceStart(ctx, outSeq, openid, name, idNumber)
	if err != nil {
		return FaceStarted{}, err
	}
	s.audit(ctx, AuditEntry{UserID: p.User.ID, Actor: "user", Action: "disclose", Field: FieldIDNumber,
		Purpose: "face verification: name and ID number sent to WeChat, not stored", RequestID: requestID})
	f := FaceVerification{
		VerifyID: st.VerifyID, OutSeqNo: outSeq, CertHash: st.CertHash, OpenID: openid,
		UserID: p.User.ID, Family: p.Session.FamilyID, StartedAt: now, ExpiresAt: now.Add(st.ExpiresIn),
	}
	if err := s.store.PutFaceVerification(ctx, f); err != nil {
		return FaceStarted{}, fmt.Errorf("keep face verification: %w", err)
	}
	return FaceStarted{VerifyID: st.VerifyID, ExpiresIn: int(st.ExpiresIn / time.Second)}, nil
}

// FaceResult reads how the caller's face check went and, when it passed,
// marks the calling session with amr "face" and the time of the check.
// The check is one the hub started for the caller (verify_id); the legacy
// path adds the phone's verify_result, which must be the caller's (openid),
// from that check (its identify_time within the verify_id's lifetime) and
// unused: a result counts once. Errors: KindInvalid, KindNotFound (unknown,
// expired or used verify_id), KindForbidden (another user's verify_id or
// result, a result from another check or already used, or the check failed:
// the message says why), KindConflict (not finished yet: ask again),
// KindExpired, KindUpstreamUnavailable.
func (s *Service) FaceResult(ctx context.Context, p Principal, verifyID, verifyResult string) (FacePassed, error) {
	openid, err := s.faceReady(p)
	if err != nil {
		return FacePassed{}, err
	}
	if verifyID == "" {
		return FacePassed{}, Errorf(KindInvalid, `send {"verify_id"}, with the legacy {"verify_result"} if the phone has one`)
	}
	// The owner is checked before the verification is consumed: another
	// user's attempt leaves it to its owner.
	f, err := s.store.TakeFaceVerification(ctx, verifyID, p.User.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return FacePassed{}, Errorf(KindNotFound, "no face verification with this verify_id (unknown, expired or already used)")
	case errors.Is(err, ErrForbidden):
		return FacePassed{}, Errorf(KindForbidden, "this face verification belongs to another user")
	case err != nil:
		return FacePassed{}, fmt.Errorf("face result: %w", err)
	}
	var out FaceOutcome
	if verifyResult == "" {
		if out, err = s.face.FaceCheck(ctx, f.VerifyID, f.OutSeqNo, f.CertHash, f.OpenID); err != nil {
			return FacePassed{}, err
		}
		if !out.Finished {
			// Not done on the phone yet: keep it for the next ask.
			if err := s.store.PutFaceVerification(ctx, f); err != nil {
				return FacePassed{}, fmt.Errorf("face result: keep: %w", err)
			}
			return FacePassed{}, Errorf(KindConflict, "the face verification is not finished on the phone yet")
		}
		// queryverifyinfo says no time: the pass is as fresh as this answer.
		out.IdentifiedAt = s.now()
	} else if out, err = s.legacyFaceResult(ctx, f, openid, verifyResult); err != nil {
		return FacePassed{}, err
	}
	if !out.Passed {
		return FacePassed{}, Errorf(KindForbidden, "face verification failed: %s", out.Reason)
	}
	at := out.IdentifiedAt
	if now := s.now(); at.After(now) {
		at = now // WeChat's clock ahead of ours: never a face time in the future
	}
	if err := s.store.MarkSessionFace(ctx, p.Session.AccessRef(), at); err != nil {
		return FacePassed{}, fmt.Errorf("face result: mark session: %w", err)
	}
	p.Session.FaceAt = at
	if !slices.Contains(p.Session.AMR, "face") {
		p.Session.AMR = append(append([]string(nil), p.Session.AMR...), "face")
	}
	return FacePassed{Passed: true, IdentifyTime: at.UTC(), Session: p.Facts()}, nil
}

// legacyFaceResult reads a verify_result for the verification f, taken
// by the caller (WeChat user openid), and checks that it is a result of
// that check: the caller's, identified between f's start and now within
// f's lifetime, and not used before.
func (s *Service) legacyFaceResult(ctx context.Context, f FaceVerification, openid, verifyResult string) (FaceOutcome, error) {
	out, owner, err := s.face.FaceCheckLegacy(ctx, verifyResult)
	if err != nil {
		return FaceOutcome{}, err
	}
	if owner != openid || f.OpenID != openid {
		return FaceOutcome{}, Errorf(KindForbidden, "this face verification belongs to another WeChat user")
	}
	if out.IdentifiedAt.IsZero() {
		// Without it a result cannot be tied to this check, nor its age known.
		return FaceOutcome{}, Errorf(KindForbidden, "WeChat did not say when this face verification happened; start a new one")
	}
	now := s.now()
	started, lifetime := f.StartedAt, f.ExpiresAt.Sub(f.StartedAt)
	if started.IsZero() || lifetime <= 0 {
		// Kept by a hub that did not record the start: assume WeChat's lifetime.
		lifetime = faceResultLifetime
		started = f.ExpiresAt.Add(-lifetime)
	}
	if out.IdentifiedAt.Before(started.Add(-faceClockSkew)) || out.IdentifiedAt.After(now.Add(faceClockSkew)) ||
		now.Sub(out.IdentifiedAt) > lifetime {
		return FaceOutcome{}, Errorf(KindForbidden, "this verify_result is not from the face verification of this verify_id, or is too old")
	}
	h := sha256.Sum256([]byte(verifyResult))
	first, err := s.store.FirstUse(ctx, "face:"+hex.EncodeToString(h[:]), lifetime+2*faceClockSkew)
	if err != nil {
		return FaceOutcome{}, fmt.Errorf("face result: replay check: %w", err)
	}
	if !first {
		return FaceOutcome{}, Errorf(KindForbidden, "this verify_result was already used")
	}
	return out, nil
}

// faceResultLifetime bounds a verify_result's age for a verification kept
// without its start time (WeChat's verify_id lifetime, expires_in 3600).
const faceResultLifetime = time.Hour
