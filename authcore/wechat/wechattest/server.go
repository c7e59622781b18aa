// Package wechattest is a faithful fake of WeChat's mini-program server API,
// like net/http/httptest is a real server for tests: a Server is an
// http.Handler that answers the paths of https://api.weixin.qq.com with the
// same parameters, JSON shapes and errcodes, for one sandbox mini-program
// and any number of sandbox users.
//
// Tests mount it with httptest.NewServer(&wechattest.Server{}); the running
// hub mounts it as its sandbox with
// http.StripPrefix("/sandbox/wechat", srv). Besides the WeChat paths it
// serves a few sandbox-only ones that play the phone's part (what wx.login,
// the phone-number button and wx.requestFacialVerify return on a user's
// phone), and exported knobs that inject errcodes, hold requests, count
// them, take the whole server down (SetDown) and move the clock.
//
// What a Server remembers between requests (users' session_keys, codes,
// access tokens, face checks) is behind a State: in its memory by default,
// or shared, so that the nodes of a sandbox cluster answer as one WeChat
// (the hub keeps it in Redis, authcore/redisstore's Sandbox).
//
// Unknown paths fail loudly: a 404 with errcode -404, recorded for
// UnknownRequests, so that a client calling a path the fake does not know
// is caught instead of silently passing.
package wechattest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// Lifetimes WeChat documents.
const (
	// CodeLifetime is how long a wx.login or getPhoneNumber code is valid.
	CodeLifetime = 5 * time.Minute
	// TokenLifetime is an access_token's lifetime (expires_in 7200).
	TokenLifetime = 2 * time.Hour
	// tokenOverlap is how long a replaced access_token keeps working.
	tokenOverlap = 5 * time.Minute
	// MaxUserName is the longest sandbox user name, in characters: the
	// rule of every sandbox fake (oauthsandbox.ValidUserName).
	MaxUserName = oauthsandbox.MaxUserName
	// DefaultMaxUsers is how many sandbox users a Server remembers when
	// MaxUsers is 0.
	DefaultMaxUsers = 10000
)

// The WeChat paths the Server serves (relative to its mount point), and its
// sandbox-only paths.
const (
	PathCode2Session   = "/sns/jscode2session"
	PathToken          = "/cgi-bin/token"
	PathStableToken    = "/cgi-bin/stable_token"
	PathGetPhoneNumber = "/wxa/business/getuserphonenumber"
	PathCheckSession   = "/wxa/checksession"
	PathResetSession   = "/wxa/resetusersessionkey"

	PathApp         = "/app"            // sandbox: GET the mini-program's appid and secret
	PathWxLogin     = "/wx.login"       // sandbox: POST {"user"}: what wx.login returns on that phone
	PathPhoneButton = "/getPhoneNumber" // sandbox: POST {"user"}: what the phone-number button returns
	PathGetUserInfo = "/getUserInfo"    // sandbox: POST {"user"}: what wx.getUserInfo returns
)

const (
	defaultAppIDPhrase  = "loginhub sandbox mini-program"
	maxRequestBodyBytes = 64 << 10
)

// Server is a fake WeChat API server for one mini-program. The zero value is
// ready to use: on first use it fills in AppID and Secret if they are empty.
// Set the exported fields before the first request and do not change them
// afterwards (as with httptest.Server's Config); everything else is done
// through methods, which are safe for concurrent use with each other and
// with requests being served.
type Server struct {
	// Knobs are the failure knobs and counters every sandbox fake has:
	// SetClock, FailNext (an errcode with HTTP 200, as WeChat reports
	// errors; a code sent with the request is not consumed), FailNextHTTP,
	// Hold, SetDown, Requests, WaitRequests and UnknownRequests.
	oauthsandbox.Knobs

	// AppID is the mini-program's appid. Empty means a fixed sandbox appid:
	// "wx" and 16 hex characters, the same in every Server.
	AppID string
	// Secret is the mini-program's AppSecret. Empty means 32 random hex
	// characters, generated once per Server.
	Secret string
	// UnionIDs makes code2Session return a unionid, as WeChat does when the
	// mini-program is bound to an Open Platform account. A user's unionid
	// depends only on the user's name, so Servers with different appids
	// agree on it, as apps under one Open Platform account do.
	UnionIDs bool
	// MaxUsers bounds the users the Server remembers in memory: beyond it
	// the least recently used one is forgotten, so a sandbox reachable by
	// anyone cannot be made to grow without bound by inventing names. A
	// forgotten user comes back on next use with the same openid, unionid
	// and phone number (they depend only on the appid and name) and a new
	// session_key, as after WeChat rotates it. 0 means DefaultMaxUsers.
	// It does not apply to a State given in State, which has its own bound.
	MaxUsers int
	// State keeps the users' session_keys, the codes issued and the access
	// tokens; nil means in this Server's memory (bounded by MaxUsers).
	// Servers that share one State, with the same AppID and Secret,
	// answer as one WeChat: a code issued by one is accepted by another.
	State State

	mu     sync.Mutex
	ready  bool
	appID  string
	secret string
	state  State
	forced int // stable_token requests with force_refresh
}

// User is a sandbox user as WeChat knows them.
type User struct {
	Name            string
	OpenID          string // 28 URL-safe characters, stable per appid and name
	UnionID         string // 28 URL-safe characters, stable per name
	Nickname        string // "<name> (sandbox)"
	AvatarURL       string
	SessionKey      string // base64 of 16 bytes; a new one on every wx.login and resetusersessionkey
	PhoneNumber     string // as WeChat sends mainland numbers: equal to PurePhoneNumber
	PurePhoneNumber string // 11 digits, 1380000xxxx
	CountryCode     string // "86"
}

// App returns the mini-program's appid and secret, the ones a client must
// send. They are fixed for the Server's life.
func (s *Server) App() (appid, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	return s.appID, s.secret
}

// User returns the sandbox user called name, creating them on first use as
// the sandbox endpoints do. It does not rotate the session_key. It panics
// if the State fails: it is meant for tests, on the in-memory State.
func (s *Server) User(name string) User {
	u, err := s.user(context.Background(), name)
	if err != nil {
		panic(fmt.Sprintf("wechattest: user %q: %v", name, err))
	}
	return *u
}

// ForceRefreshes returns how many successful stable_token requests asked
// for force_refresh.
func (s *Server) ForceRefreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forced
}

// initLocked makes the zero value ready. s.mu must be held.
func (s *Server) initLocked() {
	if s.ready {
		return
	}
	s.ready = true
	s.appID, s.secret = s.AppID, s.Secret
	appID, secret := DefaultApp()
	if s.appID == "" {
		s.appID = appID
	}
	if s.secret == "" {
		s.secret = secret
	}
	s.state = s.State
	if s.state == nil {
		s.state = newMemState(s.MaxUsers)
	}
}

// ServeHTTP answers one request as api.weixin.qq.com would. A path it
// does not serve gets a 404 with errcode -404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.initLocked()
	s.mu.Unlock()
	s.Serve(w, r, oauthsandbox.Routes{
		Paths: map[string]http.HandlerFunc{
			PathCode2Session:        s.handleCode2Session,
			PathToken:               s.handleToken,
			PathStableToken:         s.handleStableToken,
			PathGetPhoneNumber:      s.handleGetPhoneNumber,
			PathCheckSession:        s.handleCheckSession,
			PathResetSession:        s.handleResetSession,
			PathApp:                 s.handleApp,
			PathWxLogin:             s.handleWxLogin,
			PathPhoneButton:         s.handlePhoneButton,
			PathGetUserInfo:         s.handleGetUserInfo,
			PathFaceGetVerifyID:     s.handleFaceGetVerifyID,
			PathFaceQueryVerify:     s.handleFaceQuery,
			PathFaceGetInfo:         s.handleFaceGetInfo,
			PathRequestFacialVerify: s.handleRequestFacialVerify,
		},
		Fail: func(w http.ResponseWriter, _ *http.Request, errcode int) {
			writeWeChatError(w, errcode, errmsgs[errcode])
		},
		NotFound: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, errBody(-404, "wechattest: no such path "+r.URL.Path))
		},
	})
}

// handleCode2Session is GET /sns/jscode2session.
func (s *Server) handleCode2Session(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeWeChatError(w, 43001, "require GET method")
		return
	}
	q := r.URL.Query()
	if code, msg := s.checkApp(q.Get("appid"), q.Get("secret")); code != 0 {
		writeWeChatError(w, code, msg)
		return
	}
	if q.Get("grant_type") != "authorization_code" {
		writeWeChatError(w, 40002, "invalid grant_type")
		return
	}
	jsCode := q.Get("js_code")
	if jsCode == "" {
		writeWeChatError(w, 41008, "missing code")
		return
	}
	u, used, err := s.useCode(r.Context(), CodeKindLogin, jsCode)
	switch {
	case err != nil:
		writeSystemError(w)
		return
	case used:
		writeWeChatError(w, 40163, "code been used")
		return
	case u == nil:
		writeWeChatError(w, 40029, "invalid code")
		return
	}
	// Field order and omissions as WeChat: no errcode, no expires_in.
	type session struct {
		SessionKey string `json:"session_key"`
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid,omitempty"`
	}
	resp := session{SessionKey: u.SessionKey, OpenID: u.OpenID}
	if s.UnionIDs {
		resp.UnionID = u.UnionID
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleToken is GET /cgi-bin/token. Each call issues a new token; the
// previous one keeps working for five minutes, as WeChat does.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeWeChatError(w, 43001, "require GET method")
		return
	}
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		writeWeChatError(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := s.checkApp(q.Get("appid"), q.Get("secret")); code != 0 {
		writeWeChatError(w, code, msg)
		return
	}
	token, _, err := s.newToken(r.Context(), TokenKindPlain)
	if err != nil {
		writeSystemError(w)
		return
	}
	writeToken(w, token, TokenLifetime)
}

// handleStableToken is POST /cgi-bin/stable_token: the same token with its
// remaining lifetime until it has 5 minutes left (then a new one, the old
// one working until its expiry, as WeChat documents), or until
// force_refresh asks for a new one. Its tokens are independent of
// /cgi-bin/token's, as WeChat documents.
func (s *Server) handleStableToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeWeChatError(w, 43002, "require POST method")
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if !decodeBody(r, &req) {
		writeWeChatError(w, 47001, "data format error")
		return
	}
	if req.GrantType != "client_credential" {
		writeWeChatError(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := s.checkApp(req.AppID, req.Secret); code != 0 {
		writeWeChatError(w, code, msg)
		return
	}
	ctx, now := r.Context(), s.clock()
	token, exp, err := s.state.CurrentToken(ctx, TokenKindStable)
	if err == nil && (req.ForceRefresh || token == "" || exp.Sub(now) <= tokenOverlap) {
		token, exp, err = s.newToken(ctx, TokenKindStable)
	}
	if err != nil {
		writeSystemError(w)
		return
	}
	if req.ForceRefresh {
		s.mu.Lock()
		s.forced++
		s.mu.Unlock()
	}
	// WeChat counts whole seconds and never answers 0 for a live token.
	left := exp.Sub(now).Truncate(time.Second)
	if left < time.Second {
		left = time.Second
	}
	writeToken(w, token, left)
}

// newToken issues a token of kind valid for TokenLifetime and cuts the
// life of the token it replaces to the overlap.
func (s *Server) newToken(ctx context.Context, kind string) (string, time.Time, error) {
	now := s.clock()
	t := randomToken(96) // real tokens are 130-odd URL-safe characters
	exp := now.Add(TokenLifetime)
	if err := s.state.NewToken(ctx, kind, t, exp, now.Add(tokenOverlap)); err != nil {
		return "", time.Time{}, err
	}
	return t, exp, nil
}

// handleGetPhoneNumber is POST /wxa/business/getuserphonenumber.
func (s *Server) handleGetPhoneNumber(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeWeChatError(w, 43002, "require POST method")
		return
	}
	token := r.URL.Query().Get("access_token")
	var req struct {
		Code string `json:"code"`
	}
	bodyOK := decodeBody(r, &req)
	ctx := r.Context()
	if code, msg := s.checkToken(ctx, token); code != 0 {
		writeWeChatError(w, code, msg)
		return
	}
	if !bodyOK {
		writeWeChatError(w, 47001, "data format error")
		return
	}
	// WeChat answers 40029 for a phone code that is missing, unknown,
	// expired or already used alike.
	u, _, err := s.useCode(ctx, CodeKindPhone, req.Code)
	switch {
	case err != nil:
		writeSystemError(w)
		return
	case u == nil:
		writeWeChatError(w, 40029, "invalid code")
		return
	}
	now := s.clock()
	type watermark struct {
		Timestamp int64  `json:"timestamp"`
		AppID     string `json:"appid"`
	}
	type phoneInfo struct {
		PhoneNumber     string    `json:"phoneNumber"`
		PurePhoneNumber string    `json:"purePhoneNumber"`
		CountryCode     string    `json:"countryCode"`
		Watermark       watermark `json:"watermark"`
	}
	writeJSON(w, http.StatusOK, struct {
		ErrCode   int       `json:"errcode"`
		ErrMsg    string    `json:"errmsg"`
		PhoneInfo phoneInfo `json:"phone_info"`
	}{0, "ok", phoneInfo{u.PhoneNumber, u.PurePhoneNumber, u.CountryCode, watermark{now.Unix(), s.appID}}})
}

// handleCheckSession is GET /wxa/checksession: whether signature is the
// HMAC-SHA256 (sig_method=hmac_sha256) of "" keyed with openid's CURRENT
// session_key, 87009 when it is not (a later wx.login replaced the key).
func (s *Server) handleCheckSession(w http.ResponseWriter, r *http.Request) {
	s.sessionKeyCall(w, r, func(u *User) {
		writeOK(w)
	})
}

// handleResetSession is GET /wxa/resetusersessionkey: with the same proof
// as checksession, gives the user a new session_key and returns it.
func (s *Server) handleResetSession(w http.ResponseWriter, r *http.Request) {
	s.sessionKeyCall(w, r, func(u *User) {
		u.SessionKey = base64.StdEncoding.EncodeToString(randomBytes(16))
		if err := s.state.SetSessionKey(r.Context(), u.Name, u.OpenID, u.SessionKey); err != nil {
			writeSystemError(w)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			ErrCode    int    `json:"errcode"`
			ErrMsg     string `json:"errmsg"`
			OpenID     string `json:"openid"`
			SessionKey string `json:"session_key"`
		}{0, "ok", u.OpenID, u.SessionKey})
	})
}

// sessionKeyCall checks what checksession and resetusersessionkey check,
// in WeChat's order (method, access_token, arguments, signature), and calls
// ok with the user.
func (s *Server) sessionKeyCall(w http.ResponseWriter, r *http.Request, ok func(u *User)) {
	if r.Method != http.MethodGet {
		writeWeChatError(w, 43001, "require GET method")
		return
	}
	q := r.URL.Query()
	ctx := r.Context()
	if code, msg := s.checkToken(ctx, q.Get("access_token")); code != 0 {
		writeWeChatError(w, code, msg)
		return
	}
	if q.Get("sig_method") != "hmac_sha256" || q.Get("signature") == "" || q.Get("openid") == "" {
		writeWeChatError(w, 40097, "invalid args")
		return
	}
	u, err := s.userByOpenID(ctx, q.Get("openid"))
	switch {
	case err != nil:
		writeSystemError(w)
		return
	case u == nil:
		writeWeChatError(w, 40003, "invalid openid")
		return
	}
	// Lowercase hex, as documented: a client sending anything else is
	// caught here rather than by WeChat.
	m := hmac.New(sha256.New, []byte(u.SessionKey))
	if !equal(q.Get("signature"), hex.EncodeToString(m.Sum(nil))) {
		writeWeChatError(w, 87009, "invalid signature")
		return
	}
	ok(u)
}

// checkApp checks an appid and secret as WeChat does, in its order. The
// app is fixed once the Server is ready (ServeHTTP made it so).
func (s *Server) checkApp(appid, secret string) (errcode int, errmsg string) {
	switch {
	case appid == "":
		return 41002, "appid missing"
	case !equal(appid, s.appID):
		return 40013, "invalid appid"
	case secret == "":
		return 41004, "appsecret missing"
	case !equal(secret, s.secret):
		return 40125, "invalid appsecret"
	}
	return 0, ""
}

// checkToken checks an access_token as WeChat does; -1 when the State
// fails.
func (s *Server) checkToken(ctx context.Context, token string) (errcode int, errmsg string) {
	if token == "" {
		return 41001, "access_token missing"
	}
	exp, err := s.state.TokenExpiry(ctx, token)
	now := s.clock()
	switch {
	case err != nil:
		return -1, errmsgs[-1]
	case exp.IsZero():
		return 40001, "invalid credential, access_token is invalid or not latest"
	case !now.Before(exp):
		return 42001, "access_token expired"
	}
	return 0, ""
}

// handleApp is the sandbox's GET /app: the credentials of the sandbox
// mini-program, so that any WeChat SDK can be pointed at it.
func (s *Server) handleApp(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeSandboxError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	s.mu.Lock()
	appid, secret := s.appID, s.secret
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		AppID  string `json:"appid"`
		Secret string `json:"secret"`
	}{appid, secret})
}

// handleWxLogin is the sandbox's POST /wx.login {"user"}: what wx.login
// returns on that user's phone. Like WeChat, it gives the user a new
// session_key, so data encrypted under the previous one no longer decrypts.
func (s *Server) handleWxLogin(w http.ResponseWriter, r *http.Request) {
	name, ok := sandboxUserName(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	u := s.derive(name)
	u.SessionKey = base64.StdEncoding.EncodeToString(randomBytes(16))
	code := randomToken(24) // 32 characters, as real wx.login codes
	err := s.state.SetSessionKey(ctx, name, u.OpenID, u.SessionKey)
	if err == nil {
		err = s.state.IssueCode(ctx, CodeKindLogin, code, name, s.clock().Add(CodeLifetime))
	}
	if err != nil {
		writeSandboxFailure(w)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Code string `json:"code"`
	}{code})
}

// handlePhoneButton is the sandbox's POST /getPhoneNumber {"user"}: what
// <button open-type="getPhoneNumber"> returns on that user's phone: a code
// for getuserphonenumber, and the legacy payload encrypted under the user's
// current session_key.
func (s *Server) handlePhoneButton(w http.ResponseWriter, r *http.Request) {
	name, ok := sandboxUserName(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	code := hex.EncodeToString(randomBytes(32)) // 64 hex characters, as real ones
	u, err := s.user(ctx, name)
	if err == nil {
		err = s.state.IssueCode(ctx, CodeKindPhone, code, name, s.clock().Add(CodeLifetime))
	}
	if err != nil {
		writeSandboxFailure(w)
		return
	}
	// Field order as in WeChat's plaintext; the watermark has appid first
	// here, unlike getuserphonenumber's.
	type watermark struct {
		AppID     string `json:"appid"`
		Timestamp int64  `json:"timestamp"`
	}
	plain, err := json.Marshal(struct {
		PhoneNumber     string    `json:"phoneNumber"`
		PurePhoneNumber string    `json:"purePhoneNumber"`
		CountryCode     string    `json:"countryCode"`
		Watermark       watermark `json:"watermark"`
	}{u.PhoneNumber, u.PurePhoneNumber, u.CountryCode, watermark{s.appID, s.clock().Unix()}})
	if err != nil {
		panic(err) // cannot fail for this struct
	}
	data, iv := encrypt(u.SessionKey, plain)
	writeJSON(w, http.StatusOK, struct {
		Code          string `json:"code"`
		EncryptedData string `json:"encryptedData"`
		IV            string `json:"iv"`
	}{code, data, iv})
}

// handleGetUserInfo is the sandbox's POST /getUserInfo {"user"}: what
// wx.getUserInfo returns on that user's phone: userInfo, rawData, its
// signature sha1(rawData + session_key) and the encrypted full profile.
func (s *Server) handleGetUserInfo(w http.ResponseWriter, r *http.Request) {
	name, ok := sandboxUserName(w, r)
	if !ok {
		return
	}
	u, err := s.user(r.Context(), name)
	if err != nil {
		writeSandboxFailure(w)
		return
	}
	type userInfo struct {
		NickName  string `json:"nickName"`
		Gender    int    `json:"gender"`
		Language  string `json:"language"`
		City      string `json:"city"`
		Province  string `json:"province"`
		Country   string `json:"country"`
		AvatarURL string `json:"avatarUrl"`
	}
	info := userInfo{NickName: u.Nickname, Language: "en", AvatarURL: u.AvatarURL}
	raw, err := json.Marshal(info)
	if err != nil {
		panic(err) // cannot fail for this struct
	}
	type watermark struct {
		Timestamp int64  `json:"timestamp"`
		AppID     string `json:"appid"`
	}
	full := struct {
		OpenID string `json:"openId"`
		userInfo
		UnionID   string    `json:"unionId,omitempty"`
		Watermark watermark `json:"watermark"`
	}{OpenID: u.OpenID, userInfo: info, Watermark: watermark{s.clock().Unix(), s.appID}}
	if s.UnionIDs {
		full.UnionID = u.UnionID
	}
	plain, err := json.Marshal(full)
	if err != nil {
		panic(err) // cannot fail for this struct
	}
	sig := sha1.Sum(append(raw[:len(raw):len(raw)], u.SessionKey...))
	data, iv := encrypt(u.SessionKey, plain)
	writeJSON(w, http.StatusOK, struct {
		UserInfo      userInfo `json:"userInfo"`
		RawData       string   `json:"rawData"`
		Signature     string   `json:"signature"`
		EncryptedData string   `json:"encryptedData"`
		IV            string   `json:"iv"`
	}{info, string(raw), hex.EncodeToString(sig[:]), data, iv})
}

// clock is the Server's time (SetClock).
func (s *Server) clock() time.Time {
	return s.Now()
}

// useCode consumes a code of kind and returns its user, nil if the code is
// unknown, expired or (used true) used before.
func (s *Server) useCode(ctx context.Context, kind, code string) (u *User, used bool, err error) {
	name, used, err := s.state.UseCode(ctx, kind, code, s.clock())
	if err != nil || name == "" {
		return nil, used, err
	}
	u, err = s.user(ctx, name)
	return u, false, err
}

// user returns the sandbox user called name, creating them (the State
// remembers them) if needed.
func (s *Server) user(ctx context.Context, name string) (*User, error) {
	u := s.derive(name)
	key, err := s.state.SessionKey(ctx, name, u.OpenID, base64.StdEncoding.EncodeToString(randomBytes(16)))
	if err != nil {
		return nil, err
	}
	u.SessionKey = key
	return u, nil
}

// userByOpenID returns the user with openid, nil if the State knows none.
func (s *Server) userByOpenID(ctx context.Context, openid string) (*User, error) {
	name, err := s.state.UserByOpenID(ctx, openid)
	if err != nil || name == "" {
		return nil, err
	}
	return s.user(ctx, name)
}

// derive returns user name without a session_key: everything else about a
// sandbox user depends only on the appid and the name.
func (s *Server) derive(name string) *User {
	s.mu.Lock()
	s.initLocked()
	appID := s.appID
	s.mu.Unlock()
	n := binary.BigEndian.Uint32(hash("phone", name)[:4]) % 10000
	pure := fmt.Sprintf("1380000%04d", n)
	openid, unionid := IDs(appID, name)
	return &User{
		Name:            name,
		OpenID:          openid,
		UnionID:         unionid,
		Nickname:        name + " (sandbox)",
		PhoneNumber:     pure,
		PurePhoneNumber: pure,
		CountryCode:     "86",
	}
}

// IDs returns the openid of sandbox user name in the WeChat app appID and
// the user's unionid: "o" plus 27 URL-safe characters each, 28 in all, like
// real ones. The openid depends on the app and the name, the unionid on the
// name only, so every fake WeChat app of the company (this mini-program,
// wechatwebtest's website app) gives one sandbox user one unionid, as apps
// bound to one Open Platform account do.
func IDs(appID, name string) (openid, unionid string) {
	return "o" + base64.RawURLEncoding.EncodeToString(hash("openid", appID, name))[:27],
		"o" + base64.RawURLEncoding.EncodeToString(hash("unionid", name))[:27]
}

// sandboxUserName reads {"user":"<name>"} and answers 400 when it is not a
// usable name: 1 to MaxUserName printable characters of valid UTF-8.
func sandboxUserName(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		writeSandboxError(w, http.StatusMethodNotAllowed, "use POST")
		return "", false
	}
	var req struct {
		User string `json:"user"`
	}
	if !decodeBody(r, &req) {
		writeSandboxError(w, http.StatusBadRequest, `body must be JSON {"user":"<name>"}`)
		return "", false
	}
	name := req.User
	if !oauthsandbox.ValidUserName(name) {
		writeSandboxError(w, http.StatusBadRequest, fmt.Sprintf("user must be 1 to %d printable characters", MaxUserName))
		return "", false
	}
	return name, true
}

// encrypt encrypts plain as WeChat's legacy encryptedData: AES-128-CBC with
// PKCS#7 padding, key = base64-decoded session_key, a random IV; both
// results in standard base64.
func encrypt(sessionKey string, plain []byte) (data, iv string) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		panic(err) // session keys are made here; a bad one is a bug
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(plain[:len(plain):len(plain)], make([]byte, pad)...)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	ivb := randomBytes(aes.BlockSize)
	cipher.NewCBCEncrypter(block, ivb).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(ivb)
}

func decodeBody(r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBodyBytes))
	if err != nil {
		return false
	}
	return json.Unmarshal(body, v) == nil
}

// writeOK answers a success that carries nothing but
// {"errcode":0,"errmsg":"ok"}.
func writeOK(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, errorBody{0, "ok"})
}

// writeWeChatError answers as WeChat does: HTTP 200 and an errcode.
func writeWeChatError(w http.ResponseWriter, errcode int, errmsg string) {
	writeJSON(w, http.StatusOK, errBody(errcode, errmsg))
}

// writeSystemError answers a WeChat API call whose State failed as WeChat
// answers its own failures.
func writeSystemError(w http.ResponseWriter) {
	writeWeChatError(w, -1, errmsgs[-1])
}

// writeSandboxFailure answers a sandbox-only call whose State failed.
func writeSandboxFailure(w http.ResponseWriter) {
	writeJSON(w, http.StatusServiceUnavailable, errBody(-1, errmsgs[-1]))
}

// writeSandboxError answers a malformed sandbox-only request with an HTTP
// error status, since no WeChat client depends on its shape; the body still
// has WeChat's fields (40097 is WeChat's "invalid args").
func writeSandboxError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errBody(40097, "invalid args: "+msg))
}

type errorBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func errBody(errcode int, errmsg string) errorBody {
	if errmsg == "" {
		errmsg = "error"
	}
	return errorBody{errcode, errmsg + " rid: " + rid()}
}

// errmsgs are WeChat's texts for the errcodes injected with FailNext.
var errmsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40003: "invalid openid",
	40013: "invalid appid",
	40014: "invalid access_token",
	40029: "invalid code",
	40125: "invalid appsecret",
	40163: "code been used",
	40164: "invalid ip, not in whitelist",
	40226: "high risk user",
	41001: "access_token missing",
	41008: "missing code",
	42001: "access_token expired",
	47001: "data format error",
	48001: "api unauthorized",
	87009: "invalid signature",
	40097: "invalid args",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit  mustslower  retry next minute",

	// face.go's
	ErrcodeFaceBadVerifyID:     "invalid verify_id",
	ErrcodeFaceCertHash:        "cert_hash not match",
	ErrcodeFaceExpired:         "verify_id expired",
	ErrcodeFaceOwner:           "out_seq_no or openid not match",
	ErrcodeFaceBadVerifyResult: "invalid verify_result",
}

func writeToken(w http.ResponseWriter, token string, left time.Duration) {
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}{token, int64(left / time.Second)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed structs are written
	}
	// WeChat's own (nonstandard) content type.
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

// rid is a request id in WeChat's "xxxxxxxx-xxxxxxxx-xxxxxxxx" shape.
func rid() string {
	h := hex.EncodeToString(randomBytes(12))
	return h[:8] + "-" + h[8:16] + "-" + h[16:]
}

func hash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0}) // separator: ("ab","c") and ("a","bc") differ
	}
	return h.Sum(nil)
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
}

// randomToken returns n random bytes as unpadded base64url: A-Z a-z 0-9 _ -.
func randomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}
