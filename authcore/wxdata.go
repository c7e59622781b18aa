package authcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Personal-data fields kept sealed in the PersonalDataStore.
const (
	FieldPhone = "phone"
)

// FieldSessionKey is the Vault field of a WeChat session_key (sealed for
// its openid, kept by PutSessionKey, not in the PersonalDataStore).
const FieldSessionKey = "session_key"

// wechatIdentity returns the openid of a phone session, or an error if the
// session did not come from a WeChat login.
func (s *Service) wechatIdentity(p Principal) (string, error) {
	if s.wechat == nil {
		return "", Errorf(KindUpstreamUnavailable, "WeChat login is not configured")
	}
	if p.Session.Provider != "wechat" || p.Session.Subject == "" {
		return "", Errorf(KindForbidden, "this session did not come from a WeChat login; log in with wx.login first")
	}
	return p.Session.Subject, nil
}

// sessionKeyOf returns the server-side session_key of openid.
func (s *Service) sessionKeyOf(ctx context.Context, openid string) (string, error) {
	sealed, err := s.store.SessionKey(ctx, openid)
	if errors.Is(err, ErrNotFound) {
		return "", Errorf(KindConflict, "no WeChat session_key for this user; call wx.login and /v1/wx/login again")
	}
	if err != nil {
		return "", fmt.Errorf("read session key: %w", err)
	}
	key, err := s.vault.Open(openid, FieldSessionKey, sealed)
	if err != nil {
		// Sealed under a data key retired since: as good as none.
		s.log.ErrorContext(ctx, "session key does not open", "err", err)
		return "", Errorf(KindConflict, "no usable WeChat session_key for this user; call wx.login and /v1/wx/login again")
	}
	return key, nil
}

// WxPhoneRequest carries either the current API's code or the legacy
// encrypted payload.
type WxPhoneRequest struct {
	Code               string
	EncryptedData, IV  string
	RequestID, Purpose string // for the audit trail
}

// WxPhoneResult is what the caller sees: the number masked.
type WxPhoneResult struct {
	PhoneMasked string `json:"phone_masked"`
	CountryCode string `json:"country_code"`
	Verified    bool   `json:"verified"`
}

type sealedPhone struct {
	Number      string `json:"number"`
	CountryCode string `json:"country_code"`
}

// WxPhone verifies the caller's phone number through WeChat (the
// getPhoneNumber code, or the legacy payload decrypted with the
// server-side session_key), keeps it sealed at rest with an audit entry,
// and returns it masked. Errors: KindInvalid (bad or stale payload),
// KindUnauthorized (bad code), KindForbidden, KindConflict (no
// session_key), KindUpstreamUnavailable.
func (s *Service) WxPhone(ctx context.Context, p Principal, req WxPhoneRequest) (WxPhoneResult, error) {
	openid, err := s.wechatIdentity(p)
	if err != nil {
		return WxPhoneResult{}, err
	}
	var phone Phone
	how := ""
	switch {
	case req.Code != "" && req.EncryptedData == "":
		how = "getPhoneNumber code"
		phone, err = s.wechat.PhoneByCode(ctx, req.Code)
	case req.Code == "" && req.EncryptedData != "" && req.IV != "":
		how = "legacy encrypted data"
		var key string
		if key, err = s.sessionKeyOf(ctx, openid); err == nil {
			phone, err = s.wechat.DecryptPhone(key, req.EncryptedData, req.IV)
		}
	default:
		return WxPhoneResult{}, Errorf(KindInvalid, `send either {"code"} or {"encrypted_data","iv"}`)
	}
	if err != nil {
		return WxPhoneResult{}, err
	}
	e164, err := NormalizePhone("+" + phone.CountryCode + phone.Number)
	if err != nil {
		return WxPhoneResult{}, Errorf(KindInvalid, "WeChat gave a number that is not a valid phone number")
	}
	if err := s.link(ctx, p, Identity{Provider: ProviderPhone, Subject: e164}, phoneTaken(e164)); err != nil {
		return WxPhoneResult{}, err
	}
	plain, _ := json.Marshal(sealedPhone(phone))
	if err := s.store.PutPersonalData(ctx, p.User.ID, FieldPhone, s.vault.Seal(p.User.ID, FieldPhone, string(plain))); err != nil {
		return WxPhoneResult{}, fmt.Errorf("keep phone: %w", err)
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = "phone-number login (" + how + ")"
	}
	s.audit(ctx, AuditEntry{UserID: p.User.ID, Actor: "user", Action: "collect", Field: FieldPhone, Purpose: purpose, RequestID: req.RequestID})
	return WxPhoneResult{PhoneMasked: MaskPhone(phone.Number), CountryCode: phone.CountryCode, Verified: true}, nil
}

// audit appends an audit entry; a failure is logged, not returned: the
// operation it records already happened.
func (s *Service) audit(ctx context.Context, e AuditEntry) {
	e.Time = s.now().UTC()
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit entry lost", "user", e.UserID, "action", e.Action, "field", e.Field, "err", err)
	}
}

// WxUserInfoRequest is the legacy wx.getUserInfo payload.
type WxUserInfoRequest struct {
	EncryptedData, IV, RawData, Signature string
}

// WxUserInfo decrypts the caller's profile with the server-side
// session_key, checks that it is the caller's (openid) and the rawData
// signature when given, updates the user's nickname and avatar, and
// returns the profile. Errors as WxPhone.
func (s *Service) WxUserInfo(ctx context.Context, p Principal, req WxUserInfoRequest) (WeChatUserInfo, error) {
	openid, err := s.wechatIdentity(p)
	if err != nil {
		return WeChatUserInfo{}, err
	}
	if req.EncryptedData == "" || req.IV == "" {
		return WeChatUserInfo{}, Errorf(KindInvalid, "encrypted_data and iv are required")
	}
	key, err := s.sessionKeyOf(ctx, openid)
	if err != nil {
		return WeChatUserInfo{}, err
	}
	info, err := s.wechat.DecryptUserInfo(key, req.EncryptedData, req.IV, req.RawData, req.Signature)
	if err != nil {
		return WeChatUserInfo{}, err
	}
	if info.OpenID != "" && info.OpenID != openid {
		return WeChatUserInfo{}, Errorf(KindForbidden, "this profile belongs to another WeChat user")
	}
	// WeChat (or the sandbox) takes any nickname and avatar: clean them
	// before they are stored and shown to desktops.
	prof := cleanProfile(Profile{Nickname: info.Nickname, AvatarURL: info.AvatarURL})
	info.Nickname, info.AvatarURL = prof.Nickname, prof.AvatarURL
	id := Identity{Provider: "wechat", Subject: openid, UnionID: p.Session.UnionID}
	if _, _, err := s.store.UpsertIdentity(ctx, id, prof, p.User); err != nil {
		return WeChatUserInfo{}, fmt.Errorf("update profile: %w", err)
	}
	return info, nil
}

// SessionKeyCheck says whether the server-side session_key still works.
type SessionKeyCheck struct {
	Valid  bool   `json:"valid"`
	Action string `json:"action"` // what the mini-program should do
}

// WxCheckSession asks WeChat whether the caller's session_key is still
// current (it is not after a newer wx.login on the phone, or after WeChat
// rotated it); a stale key means the next decryption would fail.
func (s *Service) WxCheckSession(ctx context.Context, p Principal) (SessionKeyCheck, error) {
	openid, err := s.wechatIdentity(p)
	if err != nil {
		return SessionKeyCheck{}, err
	}
	key, err := s.sessionKeyOf(ctx, openid)
	if err != nil {
		return SessionKeyCheck{}, err
	}
	ok, err := s.wechat.CheckSessionKey(ctx, openid, key)
	if err != nil {
		return SessionKeyCheck{}, err
	}
	if !ok {
		return SessionKeyCheck{Valid: false, Action: "call wx.login, then POST /v1/wx/login, before using encrypted data"}, nil
	}
	return SessionKeyCheck{Valid: true, Action: "none"}, nil
}
