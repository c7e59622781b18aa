// Package wechatwebtest is a faithful fake of WeChat's website login (an
// Open Platform website app): open.weixin.qq.com's qrconnect authorize page
// and api.weixin.qq.com's sns endpoints, like net/http/httptest is a real
// server for tests. A Server is an http.Handler that answers those paths
// with the same parameters, JSON shapes and errcodes, for one website app
// and any number of sandbox users.
//
// Tests mount it with oauthsandbox.Start(t, &wechatwebtest.Server{...}) or
// httptest; the hub mounts it as its sandbox with
// http.StripPrefix("/sandbox/wechat_web", srv), both hosts' paths under one
// prefix. Its qrconnect page is a consent page (oauthsandbox.ReadConsent)
// where a sandbox user name stands for the WeChat account that scans. A
// name is one person everywhere: its openid here is the website app's own,
// but its unionid is the one the mini-program sandbox
// (authcore/wechat/wechattest) gives the same name, as apps bound to one
// Open Platform account share unionids. The embedded Knobs take it down,
// fail or hold the next calls and move its clock.
package wechatwebtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// Lifetimes WeChat documents.
const (
	// CodeLifetime is how long a code is valid; it is single use.
	CodeLifetime = 10 * time.Minute
	// TokenLifetime is an access_token's lifetime (expires_in 7200).
	TokenLifetime = 2 * time.Hour
	// RefreshLifetime is a refresh_token's lifetime.
	RefreshLifetime = 30 * 24 * time.Hour
)

// The paths the Server serves, relative to its mount point: the first on
// open.weixin.qq.com, the others on api.weixin.qq.com.
const (
	PathQRConnect    = "/connect/qrconnect"
	PathAccessToken  = "/sns/oauth2/access_token"
	PathRefreshToken = "/sns/oauth2/refresh_token"
	PathAuth         = "/sns/auth"
	PathUserInfo     = "/sns/userinfo"
)

// ScopeLogin is the scope of website login.
const ScopeLogin = "snsapi_login"

// errmsgs are WeChat's texts for the errcodes the Server answers.
var errmsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40002: "invalid grant_type",
	40003: "invalid openid",
	40013: "invalid appid",
	40029: "invalid code",
	40030: "invalid refresh_token",
	40125: "invalid appsecret",
	40163: "code been used",
	41001: "access_token missing",
	41002: "appid missing",
	41003: "refresh_token missing",
	41004: "appsecret missing",
	41008: "missing code",
	42001: "access_token expired",
	42002: "refresh_token expired",
	42003: "code expired",
	45011: "api minute-quota reach limit  mustslower  retry next minute",
}

const defaultAppIDPhrase = "loginhub sandbox website app"

// Server is a fake WeChat website login for one website app. The zero
// value is ready; set the exported fields before the first request and do
// not change them afterwards. Methods are safe for concurrent use with
// each other and with requests being served.
type Server struct {
	oauthsandbox.Knobs

	// AppID is the website app's appid. Empty means DefaultApp's: "wx" and
	// 16 hex characters, the same in every Server and not the mini-program
	// sandbox's.
	AppID string
	// Secret is the app's AppSecret. Empty means 32 random hex characters,
	// generated once per Server; a cluster agrees on one with
	// State.AppSecret and sets it here.
	Secret string
	// RedirectURIs are the app's authorized callbacks: qrconnect with
	// another redirect_uri shows WeChat's "redirect_uri 参数错误" page.
	// Empty means any http or https URL (oauthsandbox.RedirectAllowed).
	RedirectURIs []string
	// State keeps the codes and tokens; nil means in this Server's memory.
	// Servers that share one State (and AppID and Secret) answer as one
	// WeChat.
	State oauthsandbox.State

	app oauthsandbox.App
}

// User is a sandbox user as this website app sees them.
type User struct {
	Name     string
	OpenID   string // per app and name
	UnionID  string // per name: the mini-program sandbox's for the same name
	Nickname string // "<name> (sandbox)"
}

// DefaultApp returns the sandbox website app's appid, the same in every
// Server, and a new random secret: what a Server with empty AppID and
// Secret uses.
func DefaultApp() (appid, secret string) {
	sum := sha256.Sum256([]byte(defaultAppIDPhrase))
	var key [16]byte
	rand.Read(key[:])
	return "wx" + hex.EncodeToString(sum[:8]), hex.EncodeToString(key[:])
}

func (s *Server) init() { s.app.Fix(s.AppID, s.Secret, s.State, DefaultApp) }

// App returns the appid and secret a client must use, fixed for the
// Server's life.
func (s *Server) App() (appid, secret string) {
	s.init()
	return s.app.ID(), s.app.Secret()
}

// User returns the sandbox user called name as this app sees them.
func (s *Server) User(name string) User {
	s.init()
	openid, unionid := wechattest.IDs(s.app.ID(), name)
	return User{Name: name, OpenID: openid, UnionID: unionid, Nickname: name + " (sandbox)"}
}

// ServeHTTP answers one request as open.weixin.qq.com and
// api.weixin.qq.com would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	s.Serve(w, r, oauthsandbox.Routes{
		Paths: map[string]http.HandlerFunc{
			PathQRConnect:    s.handleQRConnect,
			PathAccessToken:  s.handleAccessToken,
			PathRefreshToken: s.handleRefreshToken,
			PathAuth:         s.handleAuth,
			PathUserInfo:     s.handleUserInfo,
		},
		Fail: s.writeFailure,
	})
}

func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, errcode int) {
	if r.URL.Path == PathQRConnect {
		oauthsandbox.ErrorPage(w, http.StatusOK, "请求参数错误", errmsgs[errcode])
		return
	}
	writeError(w, errcode)
}

// handleQRConnect is open.weixin.qq.com's /connect/qrconnect: the page
// with the QR code a user scans, here the consent page. It checks appid,
// redirect_uri, response_type and scope, and redirects to redirect_uri with
// code and state, or, when the user refuses, with state alone.
func (s *Server) handleQRConnect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	switch {
	case !equal(q.Get("appid"), s.app.ID()):
		oauthsandbox.ErrorPage(w, http.StatusOK, "请求参数错误", "appid 参数错误")
		return
	case !oauthsandbox.RedirectAllowed(s.RedirectURIs, redirectURI):
		oauthsandbox.ErrorPage(w, http.StatusOK, "请求参数错误", "redirect_uri 参数错误")
		return
	case q.Get("response_type") != "code":
		oauthsandbox.ErrorPage(w, http.StatusOK, "请求参数错误", "response_type 参数错误")
		return
	case !hasScope(q.Get("scope"), ScopeLogin):
		oauthsandbox.ErrorPage(w, http.StatusOK, "请求参数错误", "Scope 参数错误或没有 Scope 权限")
		return
	}
	name, deny, ok := oauthsandbox.ReadConsent(w, r, oauthsandbox.Consent{Provider: "WeChat", App: s.app.ID(), Scope: ScopeLogin})
	if !ok {
		return
	}
	back := oauthsandbox.StateParam(q)
	if deny {
		oauthsandbox.Redirect(w, r, redirectURI, back) // with state alone
		return
	}
	now := s.Now()
	code := randomToken(24)
	g := oauthsandbox.Grant{User: name, App: s.app.ID(), RedirectURI: redirectURI, Scope: ScopeLogin, Issued: now, Expires: now.Add(CodeLifetime)}
	if err := s.app.IssueAndRedirect(r.Context(), w, r, code, g, back); err != nil {
		oauthsandbox.ErrorPage(w, http.StatusServiceUnavailable, "系统错误", errmsgs[-1])
	}
}

// handleAccessToken is GET /sns/oauth2/access_token: the code exchange.
func (s *Server) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code := s.checkApp(q.Get("appid"), q.Get("secret"), true); code != 0 {
		writeError(w, code)
		return
	}
	if q.Get("grant_type") != "authorization_code" {
		writeError(w, 40002)
		return
	}
	if q.Get("code") == "" {
		writeError(w, 41008)
		return
	}
	ctx := r.Context()
	now := s.Now()
	g, status, err := s.app.State().UseCode(ctx, q.Get("code"), now)
	switch {
	case err != nil:
		writeError(w, -1)
		return
	case status == oauthsandbox.CodeUsed:
		writeError(w, 40163)
		return
	case status == oauthsandbox.CodeExpired:
		writeError(w, 42003)
		return
	case status != oauthsandbox.CodeOK || g.App != s.app.ID():
		writeError(w, 40029)
		return
	}
	refresh := randomToken(64)
	rg := oauthsandbox.Grant{User: g.User, App: g.App, Scope: g.Scope, Issued: now, Expires: now.Add(RefreshLifetime)}
	if err := s.app.State().IssueToken(ctx, "r:"+refresh, rg); err != nil {
		writeError(w, -1)
		return
	}
	s.writeToken(w, r, rg, refresh, true)
}

// handleRefreshToken is GET /sns/oauth2/refresh_token: a new access_token
// for a refresh_token, which stays the same and keeps its 30 days.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code := s.checkApp(q.Get("appid"), "", false); code != 0 {
		writeError(w, code)
		return
	}
	if q.Get("grant_type") != "refresh_token" {
		writeError(w, 40002)
		return
	}
	refresh := q.Get("refresh_token")
	if refresh == "" {
		writeError(w, 41003)
		return
	}
	g, found, err := s.app.State().Token(r.Context(), "r:"+refresh)
	switch {
	case err != nil:
		writeError(w, -1)
		return
	case !found || g.App != s.app.ID():
		writeError(w, 40030)
		return
	case g.Expired(s.Now()):
		writeError(w, 42002)
		return
	}
	s.writeToken(w, r, g, refresh, false)
}

// writeToken issues an access token for the refresh grant rg and answers
// WeChat's token JSON; the code exchange's answer carries the unionid, the
// refresh's does not.
func (s *Server) writeToken(w http.ResponseWriter, r *http.Request, rg oauthsandbox.Grant, refresh string, unionid bool) {
	now := s.Now()
	access := randomToken(64)
	ag := oauthsandbox.Grant{User: rg.User, App: rg.App, Scope: rg.Scope, Issued: now, Expires: now.Add(TokenLifetime)}
	if err := s.app.State().IssueToken(r.Context(), "a:"+access, ag); err != nil {
		writeError(w, -1)
		return
	}
	u := s.User(rg.User)
	resp := struct {
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		OpenID       string `json:"openid"`
		Scope        string `json:"scope"`
		UnionID      string `json:"unionid,omitempty"`
	}{access, int64(TokenLifetime / time.Second), refresh, u.OpenID, rg.Scope, ""}
	if unionid {
		resp.UnionID = u.UnionID
	}
	writeJSON(w, resp)
}

// handleAuth is GET /sns/auth?access_token&openid: whether a token is
// valid, {"errcode":0,"errmsg":"ok"}.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.checkToken(w, r); ok {
		writeJSON(w, errorBody{0, "ok"})
	}
}

// handleUserInfo is GET /sns/userinfo?access_token&openid[&lang]: the
// profile, with the unionid.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	u, ok := s.checkToken(w, r)
	if !ok {
		return
	}
	// Field order as WeChat's; sex is 0 (unknown) since WeChat stopped
	// sending it.
	writeJSON(w, struct {
		OpenID     string   `json:"openid"`
		Nickname   string   `json:"nickname"`
		Sex        int      `json:"sex"`
		Language   string   `json:"language"`
		City       string   `json:"city"`
		Province   string   `json:"province"`
		Country    string   `json:"country"`
		HeadImgURL string   `json:"headimgurl"`
		Privilege  []string `json:"privilege"`
		UnionID    string   `json:"unionid"`
	}{u.OpenID, u.Nickname, 0, "", "", "", "", "https://thirdwx.qlogo.cn/mmopen/vi_32/" + u.OpenID + "/132", []string{}, u.UnionID})
}

// checkToken checks access_token and openid as WeChat's sns APIs do and
// returns the token's user, or answers the errcode.
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request) (User, bool) {
	q := r.URL.Query()
	code, u := s.tokenUser(r.Context(), q.Get("access_token"))
	if code == 0 && q.Get("openid") != u.OpenID {
		code = 40003
	}
	if code != 0 {
		writeError(w, code)
		return User{}, false
	}
	return u, true
}

func (s *Server) tokenUser(ctx context.Context, token string) (int, User) {
	if token == "" {
		return 41001, User{}
	}
	g, found, err := s.app.State().Token(ctx, "a:"+token)
	switch {
	case err != nil:
		return -1, User{}
	case !found:
		return 40001, User{}
	case g.Expired(s.Now()):
		return 42001, User{}
	}
	return 0, s.User(g.User)
}

// checkApp checks an appid (and, with withSecret, its secret) in WeChat's
// order.
func (s *Server) checkApp(appid, secret string, withSecret bool) int {
	switch {
	case appid == "":
		return 41002
	case !equal(appid, s.app.ID()):
		return 40013
	case !withSecret:
		return 0
	case secret == "":
		return 41004
	case !equal(secret, s.app.Secret()):
		return 40125
	}
	return 0
}

func hasScope(scopes, want string) bool {
	for sc := range strings.SplitSeq(scopes, ",") {
		if sc == want {
			return true
		}
	}
	return false
}

type errorBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// writeError answers as WeChat does: HTTP 200, the errcode, and an errmsg
// that ends in a request id.
func writeError(w http.ResponseWriter, errcode int) {
	msg := errmsgs[errcode]
	if msg == "" {
		msg = "error"
	}
	var b [12]byte
	rand.Read(b[:])
	rid := hex.EncodeToString(b[:])
	writeJSON(w, errorBody{errcode, msg + " rid: " + rid[:8] + "-" + rid[8:16] + "-" + rid[16:]})
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed structs are written
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.Write(body)
}

// randomToken returns n random bytes as unpadded base64url: the URL-safe
// characters WeChat's codes and tokens use.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
