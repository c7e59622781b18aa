package authcore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"time"
)

// SMS one-time codes, from the API contract.
const (
	SMSCodeTTL      = 5 * time.Minute
	SMSResendAfter  = 60 * time.Second
	SMSCodeTries    = 5  // wrong tries that void a code
	SMSPerNumberDay = 10 // codes per number per day
	SMSPerAddrHour  = 30 // codes per client address per hour
	smsCodeDigits   = 6
	maxPhoneInput   = 32 // longer than any way of writing an E.164 number
)

// SMS purposes.
const (
	PurposeLogin  = "login"
	PurposeBind   = "bind"
	PurposeStepUp = "step_up"
)

// DefaultPhoneNickname is the name of a user made by an SMS login, until
// they set one.
const DefaultPhoneNickname = "手机用户"

// SMSSender sends one-time codes by SMS (authcore/sms.Inbox keeps them for
// the sandbox instead). It returns KindUpstreamUnavailable when the
// provider fails; a send the provider accepted is not repeated.
type SMSSender interface {
	SendCode(ctx context.Context, m SMSMessage) error
}

// SMSMessage is one code sent to one number. It logs without its code.
type SMSMessage struct {
	Phone   string // E.164
	Purpose string
	Code    string
	SentAt  time.Time
}

// LogValue keeps the code out of every log line and masks the number.
func (m SMSMessage) LogValue() slog.Value {
	return slog.GroupValue(slog.String("phone", MaskE164(m.Phone)), slog.String("purpose", m.Purpose))
}

// Limiter counts events per key in fixed windows, across every node that
// shares the store (memstore.Store and redisstore.Store implement it).
type Limiter interface {
	Allow(ctx context.Context, key string, limit int, per time.Duration) (ok bool, retryAfter time.Duration, err error)
	// Limited reports, without counting an event, whether key's window
	// already holds limit events or more: then the time left in it, else 0.
	Limited(ctx context.Context, key string, limit int) (retryAfter time.Duration, err error)
	// Forget drops key's window, as if no event had been counted in it.
	Forget(ctx context.Context, key string) error
}

// NormalizePhone returns s as an E.164 number ("+8613800138000"). It takes
// "+<country><number>" and "00<country><number>", with spaces, hyphens and
// dots between digits, and 11-digit mainland mobile numbers without a
// prefix (+86). A +86 number must be an 11-digit mobile number (1...), the
// only kind that receives SMS. Errors: KindInvalid.
func NormalizePhone(s string) (string, error) {
	bad := Errorf(KindInvalid, "phone must be an E.164 number (+8613800138000) or an 11-digit mainland mobile number")
	if s == "" {
		return "", Errorf(KindInvalid, "phone is required")
	}
	if len(s) > maxPhoneInput {
		return "", bad
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && i == 0:
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.':
			// Separators people type; never two in a row, never first or last.
			if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
				return "", bad
			}
		default:
			return "", bad
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "+"):
		d = d[1:]
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case len(d) == 11 && d[0] == '1':
		d = "86" + d
	default:
		return "", bad
	}
	// E.164: at most 15 digits, no leading zero in the country code.
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", bad
	}
	if strings.HasPrefix(d, "86") && (len(d) != 13 || d[2] != '1') {
		return "", bad
	}
	return "+" + d, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// MaskE164 masks an E.164 number for logs and responses: a mainland number
// as "+86 138****5678", any other as MaskPhone does.
func MaskE164(p string) string {
	if len(p) == 14 && strings.HasPrefix(p, "+86") && isDigits(p[1:]) {
		return "+86 " + MaskPhone(p[3:])
	}
	return MaskPhone(p)
}

// SMSCodeRequest asks for a code to be sent.
type SMSCodeRequest struct {
	Phone    string
	Purpose  string
	StepUpID string
	ClientIP netip.Addr // for the per-address limit
}

// SMSCodeSent is the answer to every accepted request, whether or not the
// number has a user.
type SMSCodeSent struct {
	ExpiresIn   int `json:"expires_in"`
	ResendAfter int `json:"resend_after"`
}

// SendSMSCode sends a fresh one-time code to req.Phone, replacing the
// number's earlier code of the same purpose. It answers the same whether or
// not the number has a user, so that it tells nobody who is registered.
// A code sent for one purpose is checked for that one only; a step_up code
// goes to the phone of the challenged user (req.Phone is ignored) and
// completes that challenge only. Limits (counted in the store, so across
// nodes): SMSPerAddrHour per client address, one per SMSResendAfter and
// SMSPerNumberDay per number. Errors: KindNotFound (SMS disabled),
// KindInvalid, KindUnauthorized (an unknown or expired step-up),
// KindRateLimited, KindUpstreamUnavailable.
func (s *Service) SendSMSCode(ctx context.Context, req SMSCodeRequest) (SMSCodeSent, error) {
	if s.sms == nil {
		return SMSCodeSent{}, errSMSDisabled
	}
	switch req.Purpose {
	case PurposeLogin, PurposeBind:
	case PurposeStepUp:
		if req.StepUpID == "" {
			return SMSCodeSent{}, Errorf(KindInvalid, "step_up_id is required with purpose step_up")
		}
		return s.sendStepUpCode(ctx, req.StepUpID, req.ClientIP)
	case "":
		return SMSCodeSent{}, Errorf(KindInvalid, "purpose is required: login, bind or step_up")
	default:
		return SMSCodeSent{}, Errorf(KindInvalid, "purpose must be login, bind or step_up")
	}
	if req.StepUpID != "" {
		return SMSCodeSent{}, Errorf(KindInvalid, "step_up_id goes only with purpose step_up")
	}
	phone, err := NormalizePhone(req.Phone)
	if err != nil {
		return SMSCodeSent{}, err
	}
	return s.sendCode(ctx, phone, req.Purpose, req.Purpose, req.ClientIP)
}

// sendCode counts a send against the limits, keeps a fresh code of
// purpose for phone (hashed with hashPurpose) and sends it.
func (s *Service) sendCode(ctx context.Context, phone, purpose, hashPurpose string, client netip.Addr) (SMSCodeSent, error) {
	if err := s.smsLimits(ctx, phone, client); err != nil {
		return SMSCodeSent{}, err
	}
	code, err := newSMSCode()
	if err != nil {
		return SMSCodeSent{}, err
	}
	now := s.now()
	c := OneTimeCode{Phone: phone, Purpose: purpose, Hash: codeHash(phone, hashPurpose, code),
		ExpiresAt: now.Add(SMSCodeTTL), Tries: SMSCodeTries}
	if err := s.store.PutCode(ctx, c); err != nil {
		return SMSCodeSent{}, fmt.Errorf("sms code: %w", err)
	}
	msg := SMSMessage{Phone: phone, Purpose: purpose, Code: code, SentAt: now}
	if err := s.sms.SendCode(ctx, msg); err != nil {
		// Nothing reached the phone: the user may ask again at once. The
		// daily and per-address counts keep the send, which bound tries.
		if ferr := s.limiter.Forget(context.WithoutCancel(ctx), resendKey(phone)); ferr != nil {
			s.log.WarnContext(ctx, "sms resend window kept after a failed send", "err", ferr)
		}
		return SMSCodeSent{}, err
	}
	s.log.InfoContext(ctx, "sms code sent", slog.Any("sms", msg))
	return SMSCodeSent{ExpiresIn: int(SMSCodeTTL / time.Second), ResendAfter: int(SMSResendAfter / time.Second)}, nil
}

var errSMSDisabled = Errorf(KindNotFound, "SMS login is not enabled on this hub")

// smsLimits counts one send against every limit. Unlike the per-route
// limits, a failing limiter refuses the send: each one costs money, and the
// code could not be kept in the broken store anyway.
func (s *Service) smsLimits(ctx context.Context, phone string, client netip.Addr) error {
	limits := []struct {
		key   string
		limit int
		per   time.Duration
		msg   string
	}{
		{"sms:addr:" + clientKey(client), SMSPerAddrHour, time.Hour, "too many codes requested from this address; try again later"},
		{resendKey(phone), 1, SMSResendAfter, "a code was just sent to this number; wait before asking again"},
		{"sms:day:" + phone, SMSPerNumberDay, 24 * time.Hour, "too many codes sent to this number today"},
	}
	for _, l := range limits {
		ok, retry, err := s.limiter.Allow(ctx, l.key, l.limit, l.per)
		if err != nil {
			return fmt.Errorf("sms limits: %w", err)
		}
		if !ok {
			return &Error{Kind: KindRateLimited, Message: l.msg, RetryAfter: retry}
		}
	}
	return nil
}

// resendKey is the limit key of phone's resend window.
func resendKey(phone string) string { return "sms:resend:" + phone }

// clientKey names a client address in limit keys: an IPv6 address by its
// /64, which one subscriber usually holds whole.
func clientKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// newSMSCode returns smsCodeDigits uniformly random decimal digits.
func newSMSCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("sms code: %w", err)
	}
	return fmt.Sprintf("%0*d", smsCodeDigits, n.Int64()), nil
}

// codeHash is what the store keeps of a code. Six digits are easy to find
// from their hash, but a code lives five minutes and five tries; the hash
// only keeps codes out of store dumps and slow logs in clear.
func codeHash(phone, purpose, code string) [32]byte {
	return sha256.Sum256([]byte(phone + "\x00" + purpose + "\x00" + code))
}

// SMSLoginRequest is a login with a code sent by SendSMSCode.
type SMSLoginRequest struct {
	Phone, Code string
	Client      Client
}

// SMSLogin checks a login code and returns a session of the user whose
// phone identity is the number, making the user on first login (IsNew).
// The code is consumed by a match; a wrong one spends a try. Errors:
// KindNotFound (SMS disabled), KindInvalid, KindUnauthorized (wrong, used,
// void or expired code).
func (s *Service) SMSLogin(ctx context.Context, req SMSLoginRequest) (Session, error) {
	if s.sms == nil {
		return Session{}, errSMSDisabled
	}
	phone, err := NormalizePhone(req.Phone)
	if err != nil {
		return Session{}, err
	}
	if len(req.Code) != smsCodeDigits || !isDigits(req.Code) {
		return Session{}, Errorf(KindInvalid, "code must be %d digits", smsCodeDigits)
	}
	if err := checkClient(req.Client); err != nil {
		return Session{}, err
	}
	now := s.now()
	ok, err := s.store.CheckCode(ctx, phone, PurposeLogin, codeHash(phone, PurposeLogin, req.Code), now)
	if err != nil {
		return Session{}, fmt.Errorf("sms login: %w", err)
	}
	if !ok {
		s.log.InfoContext(ctx, "sms login refused", slog.String("phone", MaskE164(phone)))
		return Session{}, Errorf(KindUnauthorized, "wrong or expired code")
	}
	id := Identity{Provider: ProviderPhone, Subject: phone}
	newUser := User{ID: "u_" + NewTicketID(), Nickname: DefaultPhoneNickname, CreatedAt: now}
	u, created, err := s.store.UpsertIdentity(ctx, id, Profile{}, newUser)
	if err != nil {
		return Session{}, fmt.Errorf("sms login: %w", err)
	}
	sess, _, err := s.newSession(ctx, u, sessionFacts{AMR: []string{"sms"}, Identity: id, IsNew: &created, AuthTime: now,
		Method: MethodSMS, Client: req.Client})
	return sess, err
}

// ValidDeviceID reports whether id is a client's device id: 16-64
// URL-safe characters.
func ValidDeviceID(id string) bool { return len(id) >= 16 && len(id) <= 64 && URLSafe(id) }
