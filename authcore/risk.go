package authcore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// RiskPolicy says when a login from a new place or device must be stepped
// up by an SMS code to the user's own phone (LOGINHUB_RISK).
type RiskPolicy string

// Risk policies.
const (
	RiskNewRegion RiskPolicy = "new_region" // step up when the region and the device are both new
	RiskStrict    RiskPolicy = "strict"     // step up when either is new
	RiskOff       RiskPolicy = "off"        // never step up
)

// Risk control constants from the API contract.
const (
	// RiskMemory is how far back a login's region and device are looked
	// for among the user's successful logins.
	RiskMemory = 90 * 24 * time.Hour
	// StepUpTTL is how long a step-up challenge can be completed.
	StepUpTTL = 5 * time.Minute
	// maxStepUpID bounds a step-up id in a request; real ones are a few
	// hundred bytes.
	maxStepUpID = 1024
)

// Reasons of a risk decision, as logged and counted.
const (
	ReasonFirstLogin  = "first_login"  // the login made the user: nothing to compare with
	ReasonNoPhone     = "no_phone"     // nowhere to send a code
	ReasonKnownRegion = "known_region" // a successful login came from this region
	ReasonKnownDevice = "known_device" // a successful login came from this device
	ReasonNewRegion   = "new_region"
	ReasonNewDevice   = "new_device"
)

// RiskDecision is the judgement of one login, as the core reports it to
// Config.OnRiskDecision (for metrics) and logs it.
type RiskDecision struct {
	Method  string   // MethodWx, MethodPwd
	StepUp  bool     // the login was stepped up
	Reasons []string // the Reason* constants that decided it, sorted
}

// stepUpChallenge is a stepped-up login waiting for its SMS code: what the
// session will be once the code is right. It travels sealed by the Vault
// as the challenge's id, so no node has to keep it; the replay cache makes
// the id single use.
type stepUpChallenge struct {
	UserID    string    `json:"u"`
	Phone     string    `json:"p"` // E.164, the user's phone identity at the attempt
	Method    string    `json:"m"`
	AMR       []string  `json:"a"`
	Provider  string    `json:"ip"`
	Subject   string    `json:"is"`
	UnionID   string    `json:"iu,omitempty"`
	DeviceID  string    `json:"d,omitempty"`
	Region    string    `json:"r"`
	ExpiresAt time.Time `json:"e"`
}

// The Vault's owner and field for challenges: a sealed challenge opens as
// nothing else, and nothing else opens as a challenge.
const (
	stepUpOwner = "step_up"
	stepUpField = "challenge"
	stepUpIDPre = "su_"
)

// judgeLogin applies the risk policy to a login of u that f would turn
// into a session. It returns nil when the login may go on, and
// a KindStepUpRequired error carrying a fresh challenge when it must be
// stepped up; either way the decision is logged and counted, and a
// stepped-up attempt is recorded in the user's login history.
func (s *Service) judgeLogin(ctx context.Context, u User, created bool, f sessionFacts) error {
	if s.risk == RiskOff {
		return nil
	}
	d := RiskDecision{Method: f.Method}
	region := s.regions.Region(f.Client.IP)
	var phone string
	if created {
		d.Reasons = []string{ReasonFirstLogin}
	} else {
		var err error
		phone, err = s.phoneOf(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("risk: %w", err)
		}
		if phone == "" {
			d.Reasons = []string{ReasonNoPhone}
		} else {
			knownRegion, knownDevice, err := s.knownPlace(ctx, u.ID, region, f.Client.DeviceID)
			if err != nil {
				return fmt.Errorf("risk: %w", err)
			}
			d.StepUp, d.Reasons = s.risk.decide(knownRegion, knownDevice)
		}
	}
	s.log.InfoContext(ctx, "risk decision", slog.String("user", u.ID), slog.String("method", f.Method),
		slog.Bool("step_up", d.StepUp), slog.String("reasons", strings.Join(d.Reasons, ",")), slog.String("region", region))
	if s.onRisk != nil {
		s.onRisk(d)
	}
	if !d.StepUp {
		return nil
	}
	ch := stepUpChallenge{UserID: u.ID, Phone: phone, Method: f.Method, AMR: f.AMR,
		Provider: f.Identity.Provider, Subject: f.Identity.Subject, UnionID: f.Identity.UnionID,
		DeviceID: f.Client.DeviceID, Region: region, ExpiresAt: s.now().Add(StepUpTTL)}
	raw, err := json.Marshal(ch)
	if err != nil {
		return fmt.Errorf("risk: %w", err)
	}
	s.recordLogin(ctx, s.attempt(u.ID, f.Method, OutcomeStepUp, f.Client))
	return &Error{Kind: KindStepUpRequired,
		Message: "this login comes from a new place and device; confirm it with a code sent to your phone",
		StepUp: &StepUp{ID: stepUpIDPre + s.vault.Seal(stepUpOwner, stepUpField, string(raw)), Methods: []string{"sms"},
			PhoneMasked: MaskE164(phone), Region: region, ExpiresIn: int(StepUpTTL / time.Second)}}
}

// decide is the policy's verdict on a login whose region and device are
// known or not.
func (p RiskPolicy) decide(knownRegion, knownDevice bool) (stepUp bool, reasons []string) {
	if knownRegion {
		reasons = append(reasons, ReasonKnownRegion)
	} else {
		reasons = append(reasons, ReasonNewRegion)
	}
	if knownDevice {
		reasons = append(reasons, ReasonKnownDevice)
	} else {
		reasons = append(reasons, ReasonNewDevice)
	}
	switch p {
	case RiskStrict:
		stepUp = !knownRegion || !knownDevice
	default:
		stepUp = !knownRegion && !knownDevice
	}
	// Only what decided it: the new ones for a step-up, the known ones
	// for a pass.
	reasons = slices.DeleteFunc(reasons, func(r string) bool {
		return stepUp != (r == ReasonNewRegion || r == ReasonNewDevice)
	})
	slices.Sort(reasons)
	return stepUp, reasons
}

// phoneOf returns the number of user userID's phone identity, or "".
func (s *Service) phoneOf(ctx context.Context, userID string) (string, error) {
	ids, err := s.store.Identities(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id.Provider == ProviderPhone {
			return id.Subject, nil
		}
	}
	return "", nil
}

// knownPlace reports whether a successful login of user userID in the last
// RiskMemory came from region, and whether one came from device (never,
// for a login without a device id).
func (s *Service) knownPlace(ctx context.Context, userID, region, device string) (knownRegion, knownDevice bool, err error) {
	logins, err := s.store.Logins(ctx, userID, LoginsKept)
	if err != nil {
		return false, false, err
	}
	since := s.now().Add(-RiskMemory)
	for _, a := range logins {
		if a.Outcome != OutcomeOK || a.At.Before(since) {
			continue
		}
		knownRegion = knownRegion || (region != "" && a.Region == region)
		knownDevice = knownDevice || (device != "" && a.DeviceID == device)
	}
	return knownRegion, knownDevice, nil
}

// openChallenge opens a step-up id. Errors: KindInvalid (malformed),
// KindUnauthorized (not one of ours, or expired).
func (s *Service) openChallenge(id string) (stepUpChallenge, error) {
	sealed, ok := strings.CutPrefix(id, stepUpIDPre)
	if !ok || len(id) > maxStepUpID {
		return stepUpChallenge{}, Errorf(KindInvalid, "step_up_id is not a step-up id")
	}
	raw, err := s.vault.Open(stepUpOwner, stepUpField, sealed)
	if err != nil {
		return stepUpChallenge{}, errStepUpGone
	}
	var ch stepUpChallenge
	if err := json.Unmarshal([]byte(raw), &ch); err != nil {
		return stepUpChallenge{}, errStepUpGone
	}
	if !s.now().Before(ch.ExpiresAt) {
		return stepUpChallenge{}, errStepUpGone
	}
	return ch, nil
}

var errStepUpGone = Errorf(KindUnauthorized, "unknown, used or expired step-up; log in again")

// stepUpPurpose is the purpose a step-up code is hashed with: the code of
// one challenge does not complete another, even of the same user.
func stepUpPurpose(id string) string {
	h := sha256.Sum256([]byte(id))
	return PurposeStepUp + ":" + hex.EncodeToString(h[:16])
}

// sendStepUpCode sends a step-up code to the phone of challenge id's user.
func (s *Service) sendStepUpCode(ctx context.Context, id string, client netip.Addr) (SMSCodeSent, error) {
	ch, err := s.openChallenge(id)
	if err != nil {
		return SMSCodeSent{}, err
	}
	return s.sendCode(ctx, ch.Phone, PurposeStepUp, stepUpPurpose(id), client)
}

// StepUpRequest completes a stepped-up login.
type StepUpRequest struct {
	ID, Code string
	Client   Client // the completing request's address and user agent; the device is the attempt's
}

// CompleteStepUp checks the SMS code of a step-up challenge and returns
// the session the stepped-up login would have had (its AMR plus "sms");
// the login's region and device are known from then on. A challenge
// completes once. Errors: KindNotFound (SMS disabled), KindInvalid,
// KindUnauthorized (wrong, used, void or expired code; unknown, used or
// expired challenge).
func (s *Service) CompleteStepUp(ctx context.Context, req StepUpRequest) (Session, error) {
	if s.sms == nil {
		return Session{}, errSMSDisabled
	}
	if req.ID == "" {
		return Session{}, Errorf(KindInvalid, "id is required: the step_up.id of the refused login")
	}
	if len(req.Code) != smsCodeDigits || !isDigits(req.Code) {
		return Session{}, Errorf(KindInvalid, "code must be %d digits", smsCodeDigits)
	}
	ch, err := s.openChallenge(req.ID)
	if err != nil {
		return Session{}, err
	}
	now := s.now()
	ok, err := s.store.CheckCode(ctx, ch.Phone, PurposeStepUp, codeHash(ch.Phone, stepUpPurpose(req.ID), req.Code), now)
	if err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	if !ok {
		s.log.InfoContext(ctx, "step-up refused", slog.String("user", ch.UserID))
		return Session{}, Errorf(KindUnauthorized, "wrong or expired code")
	}
	h := sha256.Sum256([]byte(req.ID))
	first, err := s.store.FirstUse(ctx, "stepup:"+hex.EncodeToString(h[:]), ch.ExpiresAt.Sub(now)+time.Minute)
	if err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	if !first {
		return Session{}, errStepUpGone
	}
	u, err := s.store.User(ctx, ch.UserID)
	if errors.Is(err, ErrNotFound) {
		return Session{}, errStepUpGone
	}
	if err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	c := Client{IP: req.Client.IP, UserAgent: req.Client.UserAgent, DeviceID: ch.DeviceID}
	f := sessionFacts{AMR: append(slices.Clone(ch.AMR), "sms"), AuthTime: now, Method: ch.Method, Client: c,
		Identity: Identity{Provider: ch.Provider, Subject: ch.Subject, UnionID: ch.UnionID}}
	s.log.InfoContext(ctx, "step-up completed", slog.String("user", u.ID), slog.String("method", ch.Method))
	sess, _, err := s.newSession(ctx, u, f)
	return sess, err
}
