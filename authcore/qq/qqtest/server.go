// Package qqtest is a faithful fake of QQ Connect (QQ互联, graph.qq.com),
// like net/http/httptest is a real server for tests: a Server is an
// http.Handler that answers QQ's OAuth 2.0 paths with the same parameters,
// response forms and error codes, for one website app and any number of
// sandbox users.
//
// Tests mount it with oauthsandbox.Start(t, &qqtest.Server{...}) or
// httptest; the hub mounts it as its sandbox with
// http.StripPrefix("/sandbox/qq", srv). Its authorize URL is a consent
// page (oauthsandbox.ReadConsent) where a sandbox user name stands for the
// QQ account; the name gives the user an openid per app and a unionid per
// person. The embedded Knobs take it down, fail or hold the next calls and
// move its clock; NoUnionID plays an app without the unionid permission.
package qqtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// Lifetimes QQ documents.
const (
	// CodeLifetime is how long an authorization code is valid ("此code会在
	// 10分钟内过期"); it is single use.
	CodeLifetime = 10 * time.Minute
	// TokenLifetime is an access_token's lifetime: three months, expires_in
	// 7776000.
	TokenLifetime = 90 * 24 * time.Hour
)

// The paths the Server serves, relative to its mount point (graph.qq.com).
const (
	PathAuthorize = "/oauth2.0/authorize"
	PathToken     = "/oauth2.0/token"
	PathMe        = "/oauth2.0/me"
	PathUserInfo  = "/user/get_user_info"
)

// QQ Connect's error codes the Server answers (QQ's public return codes
// 100000-100031, and 100048 for unionid).
const (
	ErrResponseType    = 100000 // response_type missing or not "code"
	ErrNoClientID      = 100001
	ErrNoClientSecret  = 100002
	ErrGrantType       = 100004 // grant_type missing or not authorization_code
	ErrNoCode          = 100005
	ErrNoAccessToken   = 100007
	ErrUnknownApp      = 100008 // no such appid
	ErrClientSecret    = 100009 // client_secret (appkey) wrong
	ErrRedirectURI     = 100010 // redirect_uri not the registered callback
	ErrTokenExpired    = 100014
	ErrTokenCheck      = 100016 // access token unknown ("access token check failed")
	ErrCodeExchange    = 100019 // code unknown, expired or another app's
	ErrCodeReused      = 100020
	ErrAccessToken     = 100021 // the token could not be issued (the State failed)
	ErrNoUnionID       = 100048 // unionid=1 asked by an app without the permission
	ErrInvalidArgument = -1     // get_user_info: "client request's parameters are invalid"
)

// errorTexts are the error_description / msg the Server sends, QQ's where
// known.
var errorTexts = map[int]string{
	ErrResponseType:    "response_type is empty or invalid",
	ErrNoClientID:      "client_id is empty",
	ErrNoClientSecret:  "client_secret is empty",
	ErrGrantType:       "grant_type is empty or invalid",
	ErrNoCode:          "code is empty",
	ErrNoAccessToken:   "access token is empty",
	ErrUnknownApp:      "client_id is invalid",
	ErrClientSecret:    "client_secret is invalid",
	ErrRedirectURI:     "redirect uri is illegal",
	ErrTokenExpired:    "access token is expired",
	ErrTokenCheck:      "access token check failed",
	ErrCodeExchange:    "code to access token error",
	ErrCodeReused:      "code is reused error",
	ErrAccessToken:     "get access token error",
	ErrNoUnionID:       "unionid permission denied",
	ErrInvalidArgument: "client request's parameters are invalid",
	100013:             "access token is illegal",
	100015:             "access token is revoked",
	100030:             "this api without user authorization",
	100031:             "the app has no permission for this api",
}

const defaultAppIDPhrase = "loginhub sandbox QQ app"

// Server is a fake QQ Connect for one website app. The zero value is
// ready; set the exported fields before the first request and do not change
// them afterwards. Methods are safe for concurrent use with each other and
// with requests being served.
type Server struct {
	oauthsandbox.Knobs

	// AppID is the app's appid (client_id). Empty means DefaultApp's: "101"
	// and 6 digits, the same in every Server.
	AppID string
	// AppKey is the app's APP Key (client_secret). Empty means 32 random hex
	// characters, generated once per Server; a cluster agrees on one with
	// State.AppSecret and sets it here.
	AppKey string
	// RedirectURIs are the app's registered callbacks: an authorization
	// request or code exchange with another redirect_uri fails with 100010.
	// Empty means any http or https URL (oauthsandbox.RedirectAllowed).
	RedirectURIs []string
	// NoUnionID plays an app that has not been granted the unionid
	// permission: /oauth2.0/me?unionid=1 answers 100048.
	NoUnionID bool
	// State keeps the codes and tokens; nil means in this Server's memory.
	// Servers that share one State (and AppID and AppKey) answer as one QQ.
	State oauthsandbox.State

	app oauthsandbox.App
}

// User is a sandbox user as QQ shows them to this app.
type User struct {
	Name     string
	OpenID   string // 32 upper-case hex characters, per app and name
	UnionID  string // "UID_" and 32 upper-case hex characters, per name only
	Nickname string // "<name> (sandbox)"
}

// DefaultApp returns the sandbox app's appid, the same in every Server, and
// a new random APP Key: what a Server with empty AppID and AppKey uses.
func DefaultApp() (appid, appkey string) {
	sum := sha256.Sum256([]byte(defaultAppIDPhrase))
	n := (uint32(sum[0])<<16 | uint32(sum[1])<<8 | uint32(sum[2])) % 1000000
	return fmt.Sprintf("101%06d", n), hex.EncodeToString(randomBytes(16))
}

func (s *Server) init() { s.app.Fix(s.AppID, s.AppKey, s.State, DefaultApp) }

// App returns the appid and APP Key a client must use, fixed for the
// Server's life.
func (s *Server) App() (appid, appkey string) {
	s.init()
	return s.app.ID(), s.app.Secret()
}

// User returns the sandbox user called name as this app sees them.
func (s *Server) User(name string) User {
	s.init()
	return User{
		Name:     name,
		OpenID:   upperHex(sha256.Sum256([]byte("qq openid\x00" + s.app.ID() + "\x00" + name))),
		UnionID:  "UID_" + upperHex(sha256.Sum256([]byte("qq unionid\x00"+name))),
		Nickname: name + " (sandbox)",
	}
}

// ServeHTTP answers one request as graph.qq.com would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	s.Serve(w, r, oauthsandbox.Routes{
		Paths: map[string]http.HandlerFunc{
			PathAuthorize: s.handleAuthorize,
			PathToken:     s.handleToken,
			PathMe:        s.handleMe,
			PathUserInfo:  s.handleUserInfo,
		},
		Fail: s.writeFailure,
	})
}

// writeFailure answers an injected error code in the form of r's path.
func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, code int) {
	switch r.URL.Path {
	case PathAuthorize:
		oauthsandbox.ErrorPage(w, http.StatusOK, strconv.Itoa(code), errorTexts[code])
	case PathUserInfo:
		writeRet(w, code, errorTexts[code])
	default:
		writeOAuthError(w, r, code)
	}
}

// handleAuthorize is /oauth2.0/authorize: QQ's login and consent page. It
// checks the request as QQ does (response_type, client_id, redirect_uri),
// shows the consent page, and redirects to redirect_uri with code and
// state. A user who cancels is sent back with usercancel=1 and state when
// the page is the mobile one (display=mobile), as QQ does for WAP sites;
// on the PC page QQ just closes the window, and so does this one.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(code int) {
		oauthsandbox.ErrorPage(w, http.StatusOK, strconv.Itoa(code), errorTexts[code])
	}
	redirectURI := q.Get("redirect_uri")
	switch {
	case q.Get("response_type") != "code":
		fail(ErrResponseType)
		return
	case q.Get("client_id") == "":
		fail(ErrNoClientID)
		return
	case !equal(q.Get("client_id"), s.app.ID()):
		fail(ErrUnknownApp)
		return
	case !oauthsandbox.RedirectAllowed(s.RedirectURIs, redirectURI):
		fail(ErrRedirectURI)
		return
	}
	scope := q.Get("scope")
	if scope == "" {
		scope = "get_user_info" // QQ's default
	}
	name, deny, ok := oauthsandbox.ReadConsent(w, r, oauthsandbox.Consent{Provider: "QQ", App: s.app.ID(), Scope: scope})
	if !ok {
		return
	}
	back := oauthsandbox.StateParam(q)
	if deny {
		if q.Get("display") != "mobile" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!doctype html><title>QQ</title><p>Login cancelled.</p><script>window.close()</script>\n")
			return
		}
		back.Set("usercancel", "1")
		oauthsandbox.Redirect(w, r, redirectURI, back)
		return
	}
	now := s.Now()
	code := newToken()
	g := oauthsandbox.Grant{User: name, App: s.app.ID(), RedirectURI: redirectURI, Scope: scope, Issued: now, Expires: now.Add(CodeLifetime)}
	if err := s.app.IssueAndRedirect(r.Context(), w, r, code, g, back); err != nil {
		oauthsandbox.ErrorPage(w, http.StatusServiceUnavailable, "100018", "get code error")
	}
}

// handleToken is /oauth2.0/token?grant_type=authorization_code: the code
// exchange, by GET as documented (a form POST is read too). It answers
// access_token=..&expires_in=7776000&refresh_token=.. by default, JSON with
// expires_in as a string with fmt=json, and the openid too with
// need_openid=1. Errors are JSONP (JSON with fmt=json).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	r.ParseForm()
	p := r.Form
	redirectURI := p.Get("redirect_uri")
	fail := func(code int) { writeOAuthError(w, r, code) }
	switch {
	case p.Get("grant_type") != "authorization_code":
		fail(ErrGrantType)
		return
	case p.Get("client_id") == "":
		fail(ErrNoClientID)
		return
	case p.Get("client_secret") == "":
		fail(ErrNoClientSecret)
		return
	case !equal(p.Get("client_id"), s.app.ID()):
		fail(ErrUnknownApp)
		return
	case !equal(p.Get("client_secret"), s.app.Secret()):
		fail(ErrClientSecret)
		return
	case p.Get("code") == "":
		fail(ErrNoCode)
		return
	case !oauthsandbox.RedirectAllowed(s.RedirectURIs, redirectURI):
		fail(ErrRedirectURI)
		return
	}
	ctx := r.Context()
	now := s.Now()
	g, status, err := s.app.State().UseCode(ctx, p.Get("code"), now)
	switch {
	case err != nil:
		fail(ErrCodeExchange)
		return
	case status == oauthsandbox.CodeUsed:
		fail(ErrCodeReused)
		return
	case status != oauthsandbox.CodeOK || g.App != s.app.ID():
		fail(ErrCodeExchange)
		return
	case g.RedirectURI != redirectURI:
		fail(ErrRedirectURI)
		return
	}
	access, refresh := newToken(), newToken()
	tg := oauthsandbox.Grant{User: g.User, App: g.App, Scope: g.Scope, Issued: now, Expires: now.Add(TokenLifetime)}
	if err := s.app.State().IssueToken(ctx, access, tg); err != nil {
		fail(ErrAccessToken)
		return
	}
	expiresIn := strconv.FormatInt(int64(TokenLifetime/time.Second), 10)
	openid := ""
	if p.Get("need_openid") == "1" {
		openid = s.User(g.User).OpenID
	}
	if p.Get("fmt") == "json" {
		writeJSON(w, struct {
			AccessToken  string `json:"access_token"`
			ExpiresIn    string `json:"expires_in"` // a string, as QQ sends it
			RefreshToken string `json:"refresh_token"`
			OpenID       string `json:"openid,omitempty"`
		}{access, expiresIn, refresh, openid})
		return
	}
	// Field order as QQ's: url.Values.Encode would sort them.
	body := "access_token=" + access + "&expires_in=" + expiresIn + "&refresh_token=" + refresh
	if openid != "" {
		body += "&openid=" + openid
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, body)
}

// handleMe is /oauth2.0/me?access_token[&unionid=1][&fmt=json]: the
// token's openid, as JSONP by default: callback( {"client_id","openid"} );
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g, code := s.checkToken(r.Context(), q.Get("access_token"))
	if code == 0 && q.Get("unionid") == "1" && s.NoUnionID {
		code = ErrNoUnionID
	}
	if code != 0 {
		writeOAuthError(w, r, code)
		return
	}
	u := s.User(g.User)
	me := struct {
		ClientID string `json:"client_id"`
		OpenID   string `json:"openid"`
		UnionID  string `json:"unionid,omitempty"`
	}{ClientID: g.App, OpenID: u.OpenID}
	if q.Get("unionid") == "1" {
		me.UnionID = u.UnionID
	}
	writeJSONP(w, r, me)
}

// handleUserInfo is /user/get_user_info?access_token&oauth_consumer_key&openid:
// the profile, {"ret":0,...} with most numbers as strings; errors have a
// non-zero ret and a msg.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g, code := s.checkToken(r.Context(), q.Get("access_token"))
	if code != 0 {
		writeRet(w, code, errorTexts[code])
		return
	}
	u := s.User(g.User)
	switch {
	case q.Get("oauth_consumer_key") == "" || q.Get("openid") == "":
		writeRet(w, ErrInvalidArgument, errorTexts[ErrInvalidArgument]+", oauth_consumer_key and openid are required")
		return
	case !equal(q.Get("oauth_consumer_key"), g.App):
		writeRet(w, ErrInvalidArgument, errorTexts[ErrInvalidArgument]+", invalid oauth_consumer_key")
		return
	case !equal(q.Get("openid"), u.OpenID):
		writeRet(w, ErrInvalidArgument, errorTexts[ErrInvalidArgument]+", invalid openid")
		return
	}
	fig := "http://qzapp.qlogo.cn/qzapp/" + g.App + "/" + u.OpenID + "/"
	qq := "http://thirdqq.qlogo.cn/g?b=oidb&k=" + u.OpenID + "&s="
	// Field order and types as QQ's.
	writeJSON(w, struct {
		Ret             int    `json:"ret"`
		Msg             string `json:"msg"`
		IsLost          int    `json:"is_lost"`
		Nickname        string `json:"nickname"`
		Gender          string `json:"gender"`
		GenderType      int    `json:"gender_type"`
		Province        string `json:"province"`
		City            string `json:"city"`
		Year            string `json:"year"`
		Constellation   string `json:"constellation"`
		FigureURL       string `json:"figureurl"`
		FigureURL1      string `json:"figureurl_1"`
		FigureURL2      string `json:"figureurl_2"`
		FigureURLQQ1    string `json:"figureurl_qq_1"`
		FigureURLQQ2    string `json:"figureurl_qq_2"`
		FigureURLQQ     string `json:"figureurl_qq"`
		FigureURLType   string `json:"figureurl_type"`
		IsYellowVIP     string `json:"is_yellow_vip"`
		VIP             string `json:"vip"`
		YellowVIPLevel  string `json:"yellow_vip_level"`
		Level           string `json:"level"`
		IsYellowYearVIP string `json:"is_yellow_year_vip"`
	}{
		Nickname: u.Nickname, Gender: "男", GenderType: 1, Year: "2000",
		FigureURL: fig + "30", FigureURL1: fig + "50", FigureURL2: fig + "100",
		FigureURLQQ1: qq + "40", FigureURLQQ2: qq + "100", FigureURLQQ: qq + "640", FigureURLType: "1",
		IsYellowVIP: "0", VIP: "0", YellowVIPLevel: "0", Level: "0", IsYellowYearVIP: "0",
	})
}

// checkToken returns the grant of an access token, or QQ's error code.
func (s *Server) checkToken(ctx context.Context, token string) (oauthsandbox.Grant, int) {
	if token == "" {
		return oauthsandbox.Grant{}, ErrNoAccessToken
	}
	g, found, err := s.app.State().Token(ctx, token)
	switch {
	case err != nil || !found:
		return g, ErrTokenCheck
	case g.Expired(s.Now()):
		return g, ErrTokenExpired
	}
	return g, 0
}

// writeOAuthError answers an error of /oauth2.0/token or /oauth2.0/me:
// JSONP by default, JSON with fmt=json.
func writeOAuthError(w http.ResponseWriter, r *http.Request, code int) {
	writeJSONP(w, r, struct {
		Error            int    `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{code, errorTexts[code]})
}

// writeJSONP answers v as QQ's /oauth2.0 paths do: callback( <json> );
// unless the request asked for fmt=json.
func writeJSONP(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed structs are written
	}
	if r.FormValue("fmt") == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "callback( %s );\n", body)
}

func writeRet(w http.ResponseWriter, ret int, msg string) {
	writeJSON(w, struct {
		Ret int    `json:"ret"`
		Msg string `json:"msg"`
	}{ret, msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed structs are written
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// newToken returns a code or token as QQ's look: 32 upper-case hex
// characters.
func newToken() string {
	return strings.ToUpper(hex.EncodeToString(randomBytes(16)))
}

func upperHex(sum [32]byte) string {
	return strings.ToUpper(hex.EncodeToString(sum[:16]))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
