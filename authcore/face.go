package authcore

import (
	"context"
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
}

// FaceStarted is what the phone gets to run wx.requestFacialVerify.
type FaceStarted struct {
	VerifyID  string `json:"verify_id"`
	ExpiresIn int    `json:"expires_in"`
}

// FacePassed is the result of a passed verification: the session now
// carries amr "face" and when.
type FacePassed struct {
	Passed  bool         `json:"passed"`
	Session SessionFacts `json:"session"`
}

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
	st, err := s.face.FaceStart(ctx, outSeq, openid, name, idNumber)
	if err != nil {
		return FaceStarted{}, err
	}
	s.audit(ctx, AuditEntry{UserID: p.User.ID, Actor: "user", Action: "disclose", Field: FieldIDNumber,
		Purpose: "face verification: name and ID number sent to WeChat, not stored", RequestID: requestID})
	f := FaceVerification{
		VerifyID: st.VerifyID, OutSeqNo: outSeq, CertHash: st.CertHash, OpenID: openid,
		UserID: p.User.ID, Family: p.Session.FamilyID, ExpiresAt: s.now().Add(st.ExpiresIn),
	}
	if err := s.store.PutFaceVerification(ctx, f); err != nil {
		return FaceStarted{}, fmt.Errorf("keep face verification: %w", err)
	}
	return FaceStarted{VerifyID: st.VerifyID, ExpiresIn: int(st.ExpiresIn / time.Second)}, nil
}

// FaceResult reads how the caller's face check went (verify_id, or a
// legacy verify_result) and, when it passed, marks the calling session
// with amr "face" and the time. Errors: KindNotFound (unknown or used
// verify_id), KindForbidden (another user's, or the check failed: the
// message says why), KindConflict (not finished yet: ask again),
// KindExpired, KindUpstreamUnavailable.
func (s *Service) FaceResult(ctx context.Context, p Principal, verifyID, verifyResult string) (FacePassed, error) {
	openid, err := s.faceReady(p)
	if err != nil {
		return FacePassed{}, err
	}
	var out FaceOutcome
	switch {
	case verifyID != "" && verifyResult == "":
		f, err := s.store.TakeFaceVerification(ctx, verifyID)
		if errors.Is(err, ErrNotFound) {
			return FacePassed{}, Errorf(KindNotFound, "no face verification with this verify_id (unknown, expired or already used)")
		}
		if err != nil {
			return FacePassed{}, fmt.Errorf("face result: %w", err)
		}
		if f.UserID != p.User.ID {
			return FacePassed{}, Errorf(KindForbidden, "this face verification belongs to another user")
		}
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
	case verifyResult != "" && verifyID == "":
		var owner string
		if out, owner, err = s.face.FaceCheckLegacy(ctx, verifyResult); err != nil {
			return FacePassed{}, err
		}
		if owner != openid {
			return FacePassed{}, Errorf(KindForbidden, "this face verification belongs to another WeChat user")
		}
	default:
		return FacePassed{}, Errorf(KindInvalid, `send either {"verify_id"} or {"verify_result"}`)
	}
	if !out.Passed {
		return FacePassed{}, Errorf(KindForbidden, "face verification failed: %s", out.Reason)
	}
	now := s.now()
	if err := s.store.MarkSessionFace(ctx, p.Session.AccessRef(), now); err != nil {
		return FacePassed{}, fmt.Errorf("face result: mark session: %w", err)
	}
	p.Session.FaceAt = now
	if !slices.Contains(p.Session.AMR, "face") {
		p.Session.AMR = append(append([]string(nil), p.Session.AMR...), "face")
	}
	return FacePassed{Passed: true, Session: p.Facts()}, nil
}
