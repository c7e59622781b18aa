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

var _ authcore.FaceVerifier = Core{}

// FaceStart implements authcore.FaceVerifier: a verify_id for
// wx.requestFacialVerify, and the cert_hash that ties the result to the
// person (the name and ID number themselves are not kept).
func (c Core) FaceStart(ctx context.Context, outSeqNo, openid, name, idNumber string) (authcore.FaceStart, error) {
	cert := CertInfo{Name: name, IDNumber: idNumber}
	id, ttl, err := c.Client.FaceVerifyID(ctx, outSeqNo, openid, cert)
	if err != nil {
		return authcore.FaceStart{}, err
	}
	return authcore.FaceStart{VerifyID: id, CertHash: CertHash(cert), ExpiresIn: ttl}, nil
}

// FaceCheck implements authcore.FaceVerifier.
func (c Core) FaceCheck(ctx context.Context, verifyID, outSeqNo, certHash, openid string) (authcore.FaceOutcome, error) {
	r, err := c.Client.FaceQueryResult(ctx, verifyID, outSeqNo, certHash, openid)
	if err != nil {
		return authcore.FaceOutcome{}, err
	}
	return authcore.FaceOutcome{Passed: r.Passed, Reason: r.Reason, Finished: r.Reason != FaceReasonNotFinished}, nil
}

// FaceCheckLegacy implements authcore.FaceVerifier: the getinfo path.
func (c Core) FaceCheckLegacy(ctx context.Context, verifyResult string) (authcore.FaceOutcome, string, error) {
	r, err := c.Client.FaceGetInfo(ctx, verifyResult)
	if err != nil {
		return authcore.FaceOutcome{}, "", err
	}
	return authcore.FaceOutcome{Passed: r.Passed, Reason: r.Reason, Finished: true, IdentifiedAt: r.IdentifyTime}, r.OpenID, nil
}
