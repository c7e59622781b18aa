package authcore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// The carriers of one-click login (本机号码一键登录), as the API names them.
const (
	CarrierMobile  = "cmcc" // China Mobile
	CarrierUnicom  = "cucc" // China Unicom
	CarrierTelecom = "ctcc" // China Telecom
)

// MethodCarrier is the login method and amr of a carrier one-click login.
const MethodCarrier = "carrier"

// FallbackSMS is Error.Fallback when the client should switch to SMS codes.
const FallbackSMS = "sms"

// Number verification limits (/v1/carrier/verify answers whether a number
// is the phone's own: an oracle, so it is counted per user).
const (
	CarrierVerifyPerUser = 10
	CarrierVerifyWindow  = time.Hour
	maxCarrierToken      = 4096 // longer than any carrier's token
)

// CarrierTokenLifetime is how long a carrier's token is valid, from the
// carriers' documentation: Mobile 2 minutes, Unicom 30, Telecom 10; all
// single use. Zero for an unknown carrier.
func CarrierTokenLifetime(carrier string) time.Duration {
	switch carrier {
	case CarrierMobile:
		return 2 * time.Minute
	case CarrierUnicom:
		return 30 * time.Minute
	case CarrierTelecom:
		return 10 * time.Minute
	}
	return 0
}

// Carriers is the carriers' number authentication (authcore/carrier.Gateway
// implements it). Errors: KindNotFound (the carrier is not enabled),
// KindUnauthorized (the carrier refused the token: invalid, used or
// expired), KindUpstreamUnavailable with Fallback "sms" (the carrier
// failed, timed out, is skipped by its circuit breaker, or refused the
// hub's configuration).
type Carriers interface {
	// Number returns the E.164 number the carrier vouches for: the one of
	// the device that got token from the carrier's SDK.
	Number(ctx context.Context, carrier, token string) (string, error)
	// Verify reports whether phone (E.164) is the number of the device
	// that got token.
	Verify(ctx context.Context, carrier, token, phone string) (bool, error)
}

// CarrierLoginRequest is a one-click login with a carrier's token.
type CarrierLoginRequest struct {
	Carrier, Token string
	Client         Client
}

var errCarrierDisabled = Errorf(KindNotFound, "carrier one-click login is not enabled on this hub")

// checkCarrierToken checks a request's carrier and token and spends the
// token: carriers' tokens are single use, and a token the hub has seen is
// refused before it costs a carrier call (Aliyun bills each). Errors:
// KindNotFound, KindInvalid, KindUnauthorized.
func (s *Service) checkCarrierToken(ctx context.Context, carrier, token string) error {
	if s.carriers == nil {
		return errCarrierDisabled
	}
	lifetime := CarrierTokenLifetime(carrier)
	switch {
	case carrier == "":
		return Errorf(KindInvalid, "carrier is required: cmcc, cucc or ctcc")
	case lifetime == 0:
		return Errorf(KindInvalid, "carrier must be cmcc, cucc or ctcc")
	case token == "":
		return Errorf(KindInvalid, "token is required")
	case len(token) > maxCarrierToken:
		return Errorf(KindInvalid, "token is too long")
	}
	h := sha256.Sum256([]byte(carrier + "\x00" + token))
	first, err := s.store.FirstUse(ctx, "carrier:"+hex.EncodeToString(h[:]), lifetime)
	if err != nil {
		return fmt.Errorf("carrier token: %w", err)
	}
	if !first {
		return Errorf(KindUnauthorized, "this carrier token was already used; get a new one")
	}
	return nil
}

// CarrierLogin exchanges a carrier's token for the number it vouches for
// and returns a session of the user whose phone identity that number is,
// making the user on first login (IsNew), as SMSLogin does: the carrier
// proved the number as a code would. Errors: KindNotFound (disabled),
// KindInvalid, KindUnauthorized (a used, expired or invalid token),
// KindUpstreamUnavailable with Fallback "sms".
func (s *Service) CarrierLogin(ctx context.Context, req CarrierLoginRequest) (Session, error) {
	if err := checkClient(req.Client); err != nil {
		return Session{}, err
	}
	if err := s.checkCarrierToken(ctx, req.Carrier, req.Token); err != nil {
		return Session{}, err
	}
	number, err := s.carriers.Number(ctx, req.Carrier, req.Token)
	if err != nil {
		return Session{}, err
	}
	phone, err := NormalizePhone(number)
	if err != nil {
		return Session{}, Wrap(KindUpstreamUnavailable, fmt.Errorf("carrier %s vouched for a malformed number", req.Carrier),
			"the carrier's answer was not usable; log in with an SMS code")
	}
	now := s.now()
	id := Identity{Provider: ProviderPhone, Subject: phone}
	newUser := User{ID: "u_" + NewTicketID(), Nickname: DefaultPhoneNickname, CreatedAt: now}
	u, created, err := s.store.UpsertIdentity(ctx, id, Profile{}, newUser)
	if err != nil {
		return Session{}, fmt.Errorf("carrier login: %w", err)
	}
	s.log.InfoContext(ctx, "carrier login", slog.String("carrier", req.Carrier), slog.String("phone", MaskE164(phone)),
		slog.String("user", u.ID), slog.Bool("new", created))
	sess, _, err := s.newSession(ctx, u, sessionFacts{AMR: []string{MethodCarrier}, Identity: id, IsNew: &created, AuthTime: now,
		Method: MethodCarrier, Client: req.Client})
	return sess, err
}

// CarrierVerifyRequest asks whether Phone is the number of the device
// that got Token (本机号码校验).
type CarrierVerifyRequest struct {
	Carrier, Token, Phone string
}

// CarrierVerify answers whether req.Phone is the number of the device
// that holds req.Token, never the number itself. It is an oracle, so each
// user may ask CarrierVerifyPerUser times per CarrierVerifyWindow. Errors:
// KindNotFound (disabled), KindInvalid, KindUnauthorized, KindRateLimited,
// KindUpstreamUnavailable with Fallback "sms".
func (s *Service) CarrierVerify(ctx context.Context, p Principal, req CarrierVerifyRequest) (bool, error) {
	if s.carriers == nil {
		return false, errCarrierDisabled
	}
	phone, err := NormalizePhone(req.Phone)
	if err != nil {
		return false, err
	}
	ok, retry, err := s.limiter.Allow(ctx, "carrier:verify:"+p.User.ID, CarrierVerifyPerUser, CarrierVerifyWindow)
	if err != nil {
		return false, fmt.Errorf("carrier verify limit: %w", err)
	}
	if !ok {
		return false, &Error{Kind: KindRateLimited, Message: "too many number verifications for this account; try again later", RetryAfter: retry}
	}
	if err := s.checkCarrierToken(ctx, req.Carrier, req.Token); err != nil {
		return false, err
	}
	match, err := s.carriers.Verify(ctx, req.Carrier, req.Token, phone)
	if err != nil {
		return false, err
	}
	s.log.InfoContext(ctx, "carrier number verification", slog.String("carrier", req.Carrier), slog.String("user", p.User.ID),
		slog.String("phone", MaskE164(phone)), slog.Bool("match", match))
	return match, nil
}
