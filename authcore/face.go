package authcore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Verifier is a step-up check that a vendor runs on the user's phone: a
// face check against an ID card (WeChat's, authcore/wechat.FaceVerifier),
// a liveness or a voiceprint check of another vendor. The hub starts a check for the
// caller, the phone runs it with the id the hub hands over, and the hub
// then asks the vendor how it went. Config.Verifiers keeps them by name;
// the /v1/face endpoints reach any of them, so a new vendor needs no new
// handler. Methods return *Error values (KindInvalid for a malformed name
// or ID number, KindUpstreamUnavailable when the vendor fails...) and must
// be safe for concurrent use.
type Verifier interface {
	// Method is the amr a passed check adds to the session, with its time
	// (SessionRecord.StepUps): MethodFace for a face check, "vbm" for a
	// voiceprint (RFC 8176), ... A valid method (ValidStepUpMethod) that
	// is none of the hub's login methods; verifiers may share one.
	Method() string
	// Subject is whom the vendor knows the session's user by (WeChat: the
	// openid of a WeChat login). KindForbidden, saying why, for a session
	// this verifier cannot check.
	Subject(s SessionRecord) (string, error)
	// Start begins a check of subject against the person with this name
	// and ID number, which it sends to the vendor and does not keep. ref
	// is the hub's own id for the check (WeChat's out_seq_no).
	Start(ctx context.Context, ref, subject, name, idNumber string) (FaceStart, error)
	// Check asks the vendor how the check f (as Start began it) went.
	Check(ctx context.Context, f FaceVerification) (FaceOutcome, error)
	// CheckResult reads a result the phone brought back (WeChat's legacy
	// verify_result) and says whose it is (the subject). The outcome's
	// IdentifiedAt is when the check happened, zero if the vendor did not
	// say. A verifier without such results answers KindInvalid.
	CheckResult(ctx context.Context, result string) (FaceOutcome, string, error)
}

// MethodFace is the amr of a passed face check.
const MethodFace = "face"

// VerifierWeChatFace names WeChat's face verification among the
// verifiers; a /v1/face call that names no verifier uses it.
const VerifierWeChatFace = "wechat_face"

// StepUpCheck is one answer of a verifier about a check, for metrics
// (Config.OnStepUpCheck).
type StepUpCheck struct {
	Verifier string // its name in Config.Verifiers
	Method   string // the amr it grants ("face")
	// Outcome is StepUpPass (the session got the amr), StepUpFail (the
	// vendor said the check failed), StepUpRejected (the vendor said it
	// passed but the result was not this check's: another user's, too old
	// or used before), StepUpPending (not finished on the phone yet) or
	// StepUpError (the vendor failed or refused the call).
	Outcome  string
	Duration time.Duration // the vendor call
}

// StepUpCheck outcomes.
const (
	StepUpPass     = "pass"
	StepUpFail     = "fail"
	StepUpRejected = "rejected"
	StepUpPending  = "pending"
	StepUpError    = "error"
)

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
// carries the verifier's amr ("face", ...) and when (Session.StepUps).
type FacePassed struct {
	Passed bool `json:"passed"`
	// IdentifyTime is when the face check happened, as WeChat reports it
	// (legacy verify_result; never after the hub's now), or when the hub
	// learnt of the pass (verify_id); the session's step-up time of the
	// verifier's method (face_at for a face check) is this time.
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

// verifier returns the verifier called name (empty: VerifierWeChatFace)
// and whom it knows p's user by. Errors: KindUpstreamUnavailable (no such
// verifier configured), KindInvalid (an unknown name), KindForbidden (a
// session the verifier cannot check).
func (s *Service) verifier(p Principal, name string) (Verifier, string, error) {
	if name == "" {
		name = VerifierWeChatFace
	}
	v := s.verifiers[name]
	switch {
	case v == nil && (name == VerifierWeChatFace || len(s.verifiers) == 0):
		return nil, "", Errorf(KindUpstreamUnavailable, "face verification is not configured")
	case v == nil:
		return nil, "", Errorf(KindInvalid, "no verifier %q", name)
	}
	subject, err := v.Subject(p.Session)
	if err != nil {
		return nil, "", err
	}
	return v, subject, nil
}

// canStepUp reports whether a verifier of method can check p's session.
func (s *Service) canStepUp(p Principal, method string) bool {
	for _, v := range s.verifiers {
		if _, err := v.Subject(p.Session); err == nil && v.Method() == method {
			return true
		}
	}
	return false
}

// stepUpMethodsFor returns the methods of the verifiers that can check
// p's session, sorted, each once.
func (s *Service) stepUpMethodsFor(p Principal) []string {
	var methods []string
	for _, v := range s.verifiers {
		if _, err := v.Subject(p.Session); err == nil && !slices.Contains(methods, v.Method()) {
			methods = append(methods, v.Method())
		}
	}
	slices.Sort(methods)
	return methods
}

// ValidStepUpMethod reports whether method can name a step-up check: an
// amr value as RFC 8176 registers them ("face", "vbm", "iris"), 1 to 32
// lower-case ASCII letters and digits starting with a letter.
func ValidStepUpMethod(method string) bool {
	if method == "" || len(method) > 32 || method[0] < 'a' || method[0] > 'z' {
		return false
	}
	for i := 0; i < len(method); i++ {
		if c := method[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// loginMethods are the amr values of the hub's own logins, which no
// verifier may grant: a step-up time of "sms" would read as an SMS login.
var loginMethods = []string{"wx", "qr", "sms", "pwd", MethodCarrier}

// reportCheck tells Config.OnStepUpCheck about a verifier's answer.
func (s *Service) reportCheck(name string, v Verifier, outcome string, took time.Duration) {
	if s.onStepUp != nil {
		s.onStepUp(StepUpCheck{Verifier: name, Method: v.Method(), Outcome: outcome, Duration: took})
	}
}

// FaceVerifyID starts a face check of the caller by the named verifier
// (empty: VerifierWeChatFace) against a name and ID number (a step-up for
// risky actions). The ID number goes to the vendor and is not kept, not
// even sealed: only the hash the vendor needs to tie the result to it.
// Errors: KindInvalid (malformed name or ID number, unknown verifier),
// KindForbidden, KindUpstreamUnavailable.
func (s *Service) FaceVerifyID(ctx context.Context, p Principal, verifier, name, idNumber, requestID string) (FaceStarted, error) {
	v, subject, err := s.verifier(p, verifier)
	if err != nil {
		return FaceStarted{}, err
	}
	if verifier == "" {
		verifier = VerifierWeChatFace
	}
	outSeq := NewTicketID()
	now := s.now()
	st, err := v.Start(ctx, outSeq, subject, name, idNumber)
	if err != nil {
		return FaceStarted{}, err
	}
	s.audit(ctx, AuditEntry{UserID: p.User.ID, Actor: "user", Action: "disclose", Field: FieldIDNumber,
		Purpose: "face verification: name and ID number sent to " + verifier + ", not stored", RequestID: requestID})
	f := FaceVerification{
		VerifyID: st.VerifyID, Verifier: verifier, OutSeqNo: outSeq, CertHash: st.CertHash, OpenID: subject,
		UserID: p.User.ID, Family: p.Session.FamilyID, StartedAt: now, ExpiresAt: now.Add(st.ExpiresIn),
	}
	if err := s.store.PutFaceVerification(ctx, f); err != nil {
		return FaceStarted{}, fmt.Errorf("keep face verification: %w", err)
	}
	return FaceStarted{VerifyID: st.VerifyID, ExpiresIn: int(st.ExpiresIn / time.Second)}, nil
}

// FaceResult reads how the caller's step-up check went and, when it
// passed, marks the calling session with the verifier's method (amr
// "face", "vbm"...) and the time of the check.
// The check is one the hub started for the caller (verify_id), asked of
// the verifier that started it; the legacy path adds the phone's
// verify_result, which must be the caller's (subject), from that check
// (its identify_time within the verify_id's lifetime) and unused: a result
// counts once. Each answer of the verifier is reported to
// Config.OnStepUpCheck. Errors: KindInvalid, KindNotFound (unknown,
// expired or used verify_id), KindForbidden (another user's verify_id or
// result, a result from another check or already used, or the check failed:
// the message says why), KindConflict (not finished yet: ask again),
// KindExpired, KindUpstreamUnavailable.
func (s *Service) FaceResult(ctx context.Context, p Principal, verifyID, verifyResult string) (FacePassed, error) {
	if len(s.verifiers) == 0 {
		return FacePassed{}, Errorf(KindUpstreamUnavailable, "face verification is not configured")
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
	name := cmp.Or(f.Verifier, VerifierWeChatFace) // kept by a hub before verifiers had names
	v, subject, err := s.verifier(p, name)
	if err != nil {
		// This session cannot ask (or the verifier is gone): leave the
		// check to one that can.
		if perr := s.store.PutFaceVerification(ctx, f); perr != nil {
			return FacePassed{}, fmt.Errorf("face result: keep: %w", perr)
		}
		return FacePassed{}, err
	}
	var out FaceOutcome
	began := time.Now()
	if verifyResult == "" {
		out, err = v.Check(ctx, f)
		took := time.Since(began)
		if err != nil {
			s.reportCheck(name, v, StepUpError, took)
			return FacePassed{}, err
		}
		if !out.Finished {
			s.reportCheck(name, v, StepUpPending, took)
			// Not done on the phone yet: keep it for the next ask.
			if err := s.store.PutFaceVerification(ctx, f); err != nil {
				return FacePassed{}, fmt.Errorf("face result: keep: %w", err)
			}
			return FacePassed{}, Errorf(KindConflict, "the face verification is not finished on the phone yet")
		}
		// The check's answer says no time: the pass is as fresh as this answer.
		out.IdentifiedAt = s.now()
	} else if out, err = s.legacyFaceResult(ctx, name, v, f, subject, verifyResult); err != nil {
		return FacePassed{}, err
	}
	if !out.Passed {
		s.reportCheck(name, v, StepUpFail, time.Since(began))
		return FacePassed{}, Errorf(KindForbidden, "face verification failed: %s", out.Reason)
	}
	at := out.IdentifiedAt
	if now := s.now(); at.After(now) {
		at = now // the vendor's clock ahead of ours: never a face time in the future
	}
	method := v.Method()
	if err := s.store.MarkSessionStepUp(ctx, p.Session.AccessRef(), method, at); err != nil {
		return FacePassed{}, fmt.Errorf("face result: mark session: %w", err)
	}
	s.reportCheck(name, v, StepUpPass, time.Since(began))
	p.Session.StepUps = maps.Clone(p.Session.StepUps)
	if p.Session.StepUps == nil {
		p.Session.StepUps = map[string]time.Time{}
	}
	p.Session.StepUps[method] = at
	if !slices.Contains(p.Session.AMR, method) {
		p.Session.AMR = append(append([]string(nil), p.Session.AMR...), method)
	}
	return FacePassed{Passed: true, IdentifyTime: at.UTC(), Session: p.Facts()}, nil
}

// legacyFaceResult reads a verify_result for the verification f, taken
// by the caller (known to the verifier v, called name, as subject), and
// checks that it is a result of that check: the caller's, identified
// between f's start and now within f's lifetime, and not used before. It
// reports the verifier's errors and the results it refuses.
func (s *Service) legacyFaceResult(ctx context.Context, name string, v Verifier, f FaceVerification, subject, verifyResult string) (FaceOutcome, error) {
	began := time.Now()
	out, owner, err := v.CheckResult(ctx, verifyResult)
	if err != nil {
		s.reportCheck(name, v, StepUpError, time.Since(began))
		return FaceOutcome{}, err
	}
	if err := s.bindResult(ctx, f, out, owner, subject, verifyResult); err != nil {
		outcome := StepUpRejected
		if KindOf(err) != KindForbidden {
			outcome = StepUpError // the store failed, not the result
		}
		s.reportCheck(name, v, outcome, time.Since(began))
		return FaceOutcome{}, err
	}
	return out, nil
}

// bindResult checks that a result out of owner is one of check f, whose
// caller is subject, and that it is used for the first time.
func (s *Service) bindResult(ctx context.Context, f FaceVerification, out FaceOutcome, owner, subject, verifyResult string) error {
	if owner != subject || f.OpenID != subject {
		return Errorf(KindForbidden, "this face verification result is another user's")
	}
	if out.IdentifiedAt.IsZero() {
		// Without it a result cannot be tied to this check, nor its age known.
		return Errorf(KindForbidden, "the verifier did not say when this face verification happened; start a new one")
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
		return Errorf(KindForbidden, "this verify_result is not from the face verification of this verify_id, or is too old")
	}
	h := sha256.Sum256([]byte(verifyResult))
	first, err := s.store.FirstUse(ctx, "face:"+hex.EncodeToString(h[:]), lifetime+2*faceClockSkew)
	if err != nil {
		return fmt.Errorf("face result: replay check: %w", err)
	}
	if !first {
		return Errorf(KindForbidden, "this verify_result was already used")
	}
	return nil
}

// faceResultLifetime bounds a verify_result's age for a verification kept
// without its start time (WeChat's verify_id lifetime, expires_in 3600).
const faceResultLifetime = time.Hour

// MaxStepUpAge is the largest max_age a step-up requirement may ask for:
// a check older than a day is no step-up.
const MaxStepUpAge = 24 * time.Hour

// RequireStepUp allows what an app backend guards (GET
// /v1/me?require=face&max_age=N) only to a session that passed a check of
// method within maxAge of now (its StepUps[method]). The methods are
// MethodFace, the contract's, and the method of every configured
// verifier. Errors: KindInvalid (another method, maxAge not within (0,
// MaxStepUpAge], or not whole seconds), KindStepUpRequired with the
// methods this session can renew it by (none when no verifier of method
// can check it: a desktop's session from a QR scan, or a hub without
// verifiers).
func (s *Service) RequireStepUp(p Principal, method string, maxAge time.Duration) error {
	if method != MethodFace && !s.stepUpMethod(method) {
		return Errorf(KindInvalid, "require: unknown step-up method %q (%s)", method, strings.Join(s.stepUpMethods(), ", "))
	}
	if maxAge <= 0 || maxAge > MaxStepUpAge || maxAge%time.Second != 0 {
		return Errorf(KindInvalid, "max_age: whole seconds from 1 to %d", int(MaxStepUpAge/time.Second))
	}
	if at := p.Session.StepUps[method]; !at.IsZero() && s.now().Sub(at) <= maxAge {
		return nil
	}
	methods := []string{}
	if s.canStepUp(p, method) {
		methods = append(methods, method)
	}
	return &Error{Kind: KindStepUpRequired, StepUp: &StepUp{Methods: methods},
		Message: fmt.Sprintf("this needs a %s check within the last %d seconds", method, int(maxAge/time.Second))}
}

// stepUpMethod reports whether a configured verifier grants method.
func (s *Service) stepUpMethod(method string) bool {
	for _, v := range s.verifiers {
		if v.Method() == method {
			return true
		}
	}
	return false
}

// stepUpMethods returns the methods RequireStepUp takes, sorted: face and
// the configured verifiers'.
func (s *Service) stepUpMethods() []string {
	methods := []string{MethodFace}
	for _, v := range s.verifiers {
		if !slices.Contains(methods, v.Method()) {
			methods = append(methods, v.Method())
		}
	}
	slices.Sort(methods)
	return methods
}
