package wechat

import (
	"context"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Core adapts a Client to the port the login core uses (authcore.WeChat),
// turning WeChat's wire types into the core's. It adds the checks that
// need the app's settings: the watermark appid and age of decrypted data.
type Core struct {
	Client *Client
	// WatermarkMaxAge rejects decrypted data whose watermark is older
	// (LOGINHUB_WECHAT_WATERMARK_MAX_AGE); zero does not check the age.
	WatermarkMaxAge time.Duration
	Now             func() time.Time // nil: time.Now
}

var _ authcore.WeChat = Core{}

func (c Core) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Code2Session implements authcore.WeChat.
func (c Core) Code2Session(ctx context.Context, code string) (authcore.WeChatSession, error) {
	s, err := c.Client.Code2Session(ctx, code)
	if err != nil {
		return authcore.WeChatSession{}, err
	}
	return authcore.WeChatSession{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
}

// PhoneByCode implements authcore.WeChat: the current getPhoneNumber API.
func (c Core) PhoneByCode(ctx context.Context, code string) (authcore.Phone, error) {
	p, err := c.Client.GetPhoneNumber(ctx, code)
	if err != nil {
		return authcore.Phone{}, err
	}
	if err := p.Watermark.Check(c.Client.appID, c.WatermarkMaxAge, c.now()); err != nil {
		return authcore.Phone{}, err
	}
	return phoneOf(p), nil
}

// DecryptPhone implements authcore.WeChat: the legacy encrypted payload.
func (c Core) DecryptPhone(sessionKey, encryptedData, iv string) (authcore.Phone, error) {
	p, err := DecryptPhone(c.Client.appID, sessionKey, encryptedData, iv, c.WatermarkMaxAge, c.now())
	if err != nil {
		return authcore.Phone{}, err
	}
	return phoneOf(p), nil
}

func phoneOf(p PhoneInfo) authcore.Phone {
	n := p.PurePhoneNumber
	if n == "" {
		n = p.PhoneNumber
	}
	return authcore.Phone{Number: n, CountryCode: p.CountryCode}
}

// DecryptUserInfo implements authcore.WeChat.
func (c Core) DecryptUserInfo(sessionKey, encryptedData, iv, rawData, signature string) (authcore.WeChatUserInfo, error) {
	u, err := DecryptUserInfo(c.Client.appID, sessionKey, encryptedData, iv, rawData, signature)
	if err != nil {
		return authcore.WeChatUserInfo{}, err
	}
	return authcore.WeChatUserInfo{
		OpenID: u.OpenID, UnionID: u.UnionID, Nickname: u.NickName, AvatarURL: u.AvatarURL,
		Gender: u.Gender, City: u.City, Province: u.Province, Country: u.Country, Language: u.Language,
	}, nil
}

// CheckSessionKey implements authcore.WeChat.
func (c Core) CheckSessionKey(ctx context.Context, openid, sessionKey string) (bool, error) {
	return c.Client.CheckSessionKey(ctx, openid, sessionKey)
}

// FaceVerifier is WeChat's face verification as a step-up verifier
// (authcore.VerifierWeChatFace): a face check of the user of a WeChat
// login, against a mainland ID card.
type FaceVerifier struct {
	Client *Client
}

var _ authcore.Verifier = FaceVerifier{}

// Method implements authcore.Verifier: a pass is a face check.
func (FaceVerifier) Method() string { return authcore.MethodFace }

// Subject implements authcore.Verifier: WeChat knows the user of a WeChat
// login, by the openid.
func (FaceVerifier) Subject(s authcore.SessionRecord) (string, error) {
	if s.Provider != "wechat" || s.Subject == "" {
		return "", authcore.Errorf(authcore.KindForbidden, "face verification needs a session from a WeChat login")
	}
	return s.Subject, nil
}

// Start implements authcore.Verifier: a verify_id for
// wx.requestFacialVerify, and the cert_hash that ties the result to the
// person (the name and ID number themselves are not kept).
func (v FaceVerifier) Start(ctx context.Context, outSeqNo, openid, name, idNumber string) (authcore.FaceStart, error) {
	cert := CertInfo{Name: name, IDNumber: idNumber}
	id, ttl, err := v.Client.FaceVerifyID(ctx, outSeqNo, openid, cert)
	if err != nil {
		return authcore.FaceStart{}, err
	}
	return authcore.FaceStart{VerifyID: id, CertHash: CertHash(cert), ExpiresIn: ttl}, nil
}

// Check implements authcore.Verifier with queryverifyinfo.
func (v FaceVerifier) Check(ctx context.Context, f authcore.FaceVerification) (authcore.FaceOutcome, error) {
	r, err := v.Client.FaceQueryResult(ctx, f.VerifyID, f.OutSeqNo, f.CertHash, f.OpenID)
	if err != nil {
		return authcore.FaceOutcome{}, err
	}
	return authcore.FaceOutcome{Passed: r.Passed, Reason: r.Reason, Finished: r.Reason != FaceReasonNotFinished}, nil
}

// CheckResult implements authcore.Verifier: the legacy getinfo path.
func (v FaceVerifier) CheckResult(ctx context.Context, verifyResult string) (authcore.FaceOutcome, string, error) {
	r, err := v.Client.FaceGetInfo(ctx, verifyResult)
	if err != nil {
		return authcore.FaceOutcome{}, "", err
	}
	return authcore.FaceOutcome{Passed: r.Passed, Reason: r.Reason, Finished: true, IdentifiedAt: r.IdentifyTime}, r.OpenID, nil
}
