// Package weibotest is a faithful fake of Weibo's OAuth 2.0 login
// (api.weibo.com), like net/http/httptest is a real server for tests: a
// Server is an http.Handler that answers Weibo's authorize, access_token,
// get_token_info and users/show paths with the same parameters, JSON
// shapes and error codes, for one app and any number of sandbox users.
//
// Tests mount it with oauthsandbox.Start(t, &weibotest.Server{...}) or
// httptest; the hub mounts it as its sandbox with
// http.StripPrefix("/sandbox/weibo", srv). Its authorize URL is a consent
// page (oauthsandbox.ReadConsent) where a sandbox user name stands for the
// Weibo account; the name gives the user a uid, the same in every app, as
// Weibo's are. The embedded Knobs take it down, fail or hold the next
// calls and move its clock.
package weibotest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// Lifetimes.
const (
	// CodeLifetime is how long an authorization code is valid. Weibo does
	// not document it; this is the ten minutes of RFC 6749's advice and
	// of QQ and WeChat. A code is single use.
	CodeLifetime = 10 * time.Minute
	// TokenLifetime is an access_token's lifetime: expires_in 157679999,
	// what Weibo gives an app in development.
	TokenLifetime = 157679999 * time.Second
)

// The paths the Server serves, relative to its mount point (api.weibo.com).
const (
	PathAuthorize    = "/oauth2/authorize"
	PathAccessToken  = "/oauth2/access_token"
	PathGetTokenInfo = "/oauth2/get_token_info"
	PathUsersShow    = "/2/users/show.json"
)

// Weibo's error codes the Server answers.
const (
	ErrMissingParameter   = 10016 // a required API parameter is missing
	ErrMethod             = 10021 // HTTP method not supported
	ErrNoSuchUser         = 20003
	ErrAuthFailed         = 21301 // an API call without an access_token
	ErrRedirectMismatch   = 21322
	ErrInvalidRequest     = 21323
	ErrInvalidClient      = 21324
	ErrInvalidGrant       = 21325 // code unknown, used, expired or another app's
	ErrExpiredToken       = 21327
	ErrUnsupportedGrant   = 21328
	ErrUnsupportedType    = 21329
	ErrAccessDenied       = 21330 // the user refused
	ErrUnavailable        = 21331
	ErrInvalidAccessToken = 21332
)

type weiboError struct{ name, description string }

// weiboErrors are Weibo's "error" and "error_description" for each code.
// On the OAuth paths "error" is a name and the description a sentence; on
// the /2 API "error" is the sentence.
var weiboErrors = map[int]weiboError{
	ErrMissingParameter:   {"miss required parameter (uid), see doc for more info.", ""},
	ErrMethod:             {"HTTP METHOD is not suported for this request!", ""},
	ErrNoSuchUser:         {"User does not exists!", ""},
	ErrAuthFailed:         {"auth faild!", ""},
	ErrRedirectMismatch:   {"redirect_uri_mismatch", "redirect_uri does not match the registered callback"},
	ErrInvalidRequest:     {"invalid_request", "the request is missing a required parameter"},
	ErrInvalidClient:      {"invalid_client", "client_id or client_secret is invalid"},
	ErrInvalidGrant:       {"invalid_grant", "invalid authorization code"},
	ErrExpiredToken:       {"expired_token", "the access token expired"},
	ErrUnsupportedGrant:   {"unsupported_grant_type", "grant_type must be authorization_code"},
	ErrUnsupportedType:    {"unsupported_response_type", "response_type must be code"},
	ErrAccessDenied:       {"access_denied", "user denied your request."},
	ErrUnavailable:        {"temporarily_unavailable", "the service is temporarily unavailable"},
	ErrInvalidAccessToken: {"invalid_access_token", "the access token is invalid"},
}

const defaultAppKeyPhrase = "loginhub sandbox Weibo app"

// Server is a fake Weibo for one app. The zero value is ready; set the
// exported fields before the first request and do not change them
// afterwards. Methods are safe for concurrent use with each other and with
// requests being served.
type Server struct {
	oauthsandbox.Knobs

	// AppKey is the app's App Key (client_id). Empty means DefaultApp's: 10
	// digits, the same in every Server.
	AppKey string
	// AppSecret is the app's App Secret (client_secret). Empty means 32
	// random hex characters, generated once per Server; a cluster agrees on
	// one with State.AppSecret and sets it here.
	AppSecret string
	// RedirectURIs are the app's registered callbacks: an authorization or
	// code exchange with another redirect_uri fails with 21322. Empty means
	// any http or https URL (oauthsandbox.RedirectAllowed).
	RedirectURIs []string
	// State keeps the codes and tokens; nil means in this Server's memory.
	// Servers that share one State (and AppKey and AppSecret) answer as one
	// Weibo.
	State oauthsandbox.State

	app oauthsandbox.App
}

// User is a sandbox user as Weibo knows them.
type User struct {
	Name       string
	UID        int64  // 10 digits, per name only
	ScreenName string // "<name> (sandbox)"
}

// IDStr is the uid as Weibo's JSON carries it in strings.
func (u User) IDStr() string { return strconv.FormatInt(u.UID, 10) }

// DefaultApp returns the sandbox app's App Key, the same in every Server,
// and a new random App Secret: what a Server with empty AppKey and
// AppSecret uses.
func DefaultApp() (appKey, appSecret string) {
	sum := sha256.Sum256([]byte(defaultAppKeyPhrase))
	return fmt.Sprint(1000000000 + binary.BigEndian.Uint32(sum[:4])%1000000000), hex.EncodeToString(randomBytes(16))
}

func (s *Server) init() { s.app.Fix(s.AppKey, s.AppSecret, s.State, DefaultApp) }

// App returns the App Key and App Secret a client must use, fixed for the
// Server's life.
func (s *Server) App() (appKey, appSecret string) {
	s.init()
	return s.app.ID(), s.app.Secret()
}

// UserNamed returns the sandbox user called name.
func UserNamed(name string) User {
	sum := sha256.Sum256([]byte("weibo uid\x00" + name))
	return User{
		Name:       name,
		UID:        5000000000 + int64(binary.BigEndian.Uint64(sum[:8])%1000000000),
		ScreenName: name + " (sandbox)",
	}
}

// ServeHTTP answers one request as api.weibo.com would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	s.Serve(w, r, oauthsandbox.Routes{
		Paths: map[string]http.HandlerFunc{
			PathAuthorize:    s.handleAuthorize,
			PathAccessToken:  s.handleAccessToken,
			PathGetTokenInfo: s.handleGetTokenInfo,
			PathUsersShow:    s.handleUsersShow,
		},
		Fail: s.writeFailure,
	})
}

func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, code int) {
	if r.URL.Path == PathAuthorize {
		errorPage(w, code)
		return
	}
	writeError(w, r, code)
}

// handleAuthorize is /oauth2/authorize: Weibo's login and consent page. It
// checks client_id, redirect_uri and response_type, shows the consent
// page, and redirects to redirect_uri with code and state, or, when the
// user refuses, with Weibo's error=access_denied&error_code=21330.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") == "":
		errorPage(w, ErrInvalidRequest)
		return
	case !equal(q.Get("client_id"), s.app.ID()):
		errorPage(w, ErrInvalidClient)
		return
	case !oauthsandbox.RedirectAllowed(s.RedirectURIs, redirectURI):
		errorPage(w, ErrRedirectMismatch)
		return
	case q.Get("response_type") != "" && q.Get("response_type") != "code": // code is the default
		errorPage(w, ErrUnsupportedType)
		return
	}
	name, deny, ok := oauthsandbox.ReadConsent(w, r, oauthsandbox.Consent{Provider: "Weibo", App: s.app.ID(), Scope: q.Get("scope")})
	if !ok {
		return
	}
	back := oauthsandbox.StateParam(q)
	if deny {
		e := weiboErrors[ErrAccessDenied]
		back.Set("error_uri", PathAuthorize)
		back.Set("error", e.name)
		back.Set("error_description", e.description)
		back.Set("error_code", strconv.Itoa(ErrAccessDenied))
		oauthsandbox.Redirect(w, r, redirectURI, back)
		return
	}
	now := s.Now()
	code := hex.EncodeToString(randomBytes(16))
	g := oauthsandbox.Grant{User: name, App: s.app.ID(), RedirectURI: redirectURI, Scope: q.Get("scope"), Issued: now, Expires: now.Add(CodeLifetime)}
	if err := s.app.IssueAndRedirect(r.Context(), w, r, code, g, back); err != nil {
		errorPage(w, ErrUnavailable)
	}
}

// handleAccessToken is POST /oauth2/access_token (parameters in the form
// or the query): the code exchange.
func (s *Server) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, r, ErrMethod)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	r.ParseForm()
	p := r.Form
	redirectURI := p.Get("redirect_uri")
	fail := func(code int) { writeError(w, r, code) }
	switch {
	case p.Get("client_id") == "" || p.Get("client_secret") == "":
		fail(ErrInvalidRequest)
		return
	case !equal(p.Get("client_id"), s.app.ID()) || !equal(p.Get("client_secret"), s.app.Secret()):
		fail(ErrInvalidClient)
		return
	case p.Get("grant_type") != "authorization_code":
		fail(ErrUnsupportedGrant)
		return
	case p.Get("code") == "" || redirectURI == "":
		fail(ErrInvalidRequest)
		return
	case !oauthsandbox.RedirectAllowed(s.RedirectURIs, redirectURI):
		fail(ErrRedirectMismatch)
		return
	}
	ctx := r.Context()
	now := s.Now()
	g, status, err := s.app.State().UseCode(ctx, p.Get("code"), now)
	switch {
	case err != nil:
		fail(ErrUnavailable)
		return
	case status != oauthsandbox.CodeOK || g.App != s.app.ID():
		fail(ErrInvalidGrant)
		return
	case g.RedirectURI != redirectURI:
		fail(ErrRedirectMismatch)
		return
	}
	token := "2.00" + hex.EncodeToString(randomBytes(14))
	tg := oauthsandbox.Grant{User: g.User, App: g.App, Scope: g.Scope, Issued: now, Expires: now.Add(TokenLifetime)}
	if err := s.app.State().IssueToken(ctx, token, tg); err != nil {
		fail(ErrUnavailable)
		return
	}
	life := int64(TokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		RemindIn    string `json:"remind_in"` // a string, as Weibo sends it
		ExpiresIn   int64  `json:"expires_in"`
		UID         string `json:"uid"`
		IsRealName  string `json:"isRealName"`
	}{token, strconv.FormatInt(life, 10), life, UserNamed(g.User).IDStr(), "true"})
}

// handleGetTokenInfo is POST /oauth2/get_token_info: who a token is for
// and how long it has left (uid a number here, and "expire_in").
func (s *Server) handleGetTokenInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, r, ErrMethod)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	token := r.FormValue("access_token")
	if token == "" {
		writeError(w, r, ErrInvalidRequest)
		return
	}
	g, code := s.checkToken(r.Context(), token)
	if code != 0 {
		writeError(w, r, code)
		return
	}
	var scope *string // null when none was asked, as Weibo sends it
	if g.Scope != "" {
		scope = &g.Scope
	}
	writeJSON(w, http.StatusOK, struct {
		UID      int64   `json:"uid"`
		AppKey   string  `json:"appkey"`
		Scope    *string `json:"scope"`
		CreateAt int64   `json:"create_at"`
		ExpireIn int64   `json:"expire_in"`
	}{UserNamed(g.User).UID, g.App, scope, g.Issued.Unix(), int64(g.Expires.Sub(s.Now()) / time.Second)})
}

// handleUsersShow is GET /2/users/show.json?access_token&uid (or
// screen_name): a user's profile. The sandbox knows the token's own user
// only; any other is 20003, no such user.
func (s *Server) handleUsersShow(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, r, ErrMethod)
		return
	}
	q := r.URL.Query()
	if q.Get("access_token") == "" {
		writeError(w, r, ErrAuthFailed)
		return
	}
	g, code := s.checkToken(r.Context(), q.Get("access_token"))
	if code != 0 {
		writeError(w, r, code)
		return
	}
	u := UserNamed(g.User)
	switch {
	case q.Get("uid") == "" && q.Get("screen_name") == "":
		writeError(w, r, ErrMissingParameter)
		return
	case q.Get("uid") != "" && q.Get("uid") != u.IDStr(),
		q.Get("uid") == "" && q.Get("screen_name") != u.ScreenName:
		writeError(w, r, ErrNoSuchUser)
		return
	}
	img := "https://tvax1.sinaimg.cn/"
	writeJSON(w, http.StatusOK, struct {
		ID              int64  `json:"id"`
		IDStr           string `json:"idstr"`
		Class           int    `json:"class"`
		ScreenName      string `json:"screen_name"`
		Name            string `json:"name"`
		Province        string `json:"province"`
		City            string `json:"city"`
		Location        string `json:"location"`
		Description     string `json:"description"`
		URL             string `json:"url"`
		ProfileImageURL string `json:"profile_image_url"`
		ProfileURL      string `json:"profile_url"`
		Domain          string `json:"domain"`
		Gender          string `json:"gender"`
		FollowersCount  int    `json:"followers_count"`
		FriendsCount    int    `json:"friends_count"`
		StatusesCount   int    `json:"statuses_count"`
		CreatedAt       string `json:"created_at"`
		Verified        bool   `json:"verified"`
		AvatarLarge     string `json:"avatar_large"`
		AvatarHD        string `json:"avatar_hd"`
		Lang            string `json:"lang"`
	}{
		ID: u.UID, IDStr: u.IDStr(), Class: 1, ScreenName: u.ScreenName, Name: u.ScreenName,
		Province: "11", City: "1000", Location: "北京", ProfileURL: "u/" + u.IDStr(),
		ProfileImageURL: img + "crop.0.0.50.50.50/" + u.IDStr(), Gender: "n",
		CreatedAt:   "Mon Dec 07 10:00:00 +0800 2026",
		AvatarLarge: img + "crop.0.0.180.180.180/" + u.IDStr(), AvatarHD: img + "crop.0.0.1024.1024.1024/" + u.IDStr(),
		Lang: "zh-cn",
	})
}

// checkToken returns an access token's grant, or Weibo's error code.
func (s *Server) checkToken(ctx context.Context, token string) (oauthsandbox.Grant, int) {
	g, found, err := s.app.State().Token(ctx, token)
	switch {
	case err != nil:
		return g, ErrUnavailable
	case !found:
		return g, ErrInvalidAccessToken
	case g.Expired(s.Now()):
		return g, ErrExpiredToken
	}
	return g, 0
}

// lookup returns code's error, a generic one for a code the table lacks
// (one injected with FailNext).
func lookup(code int) weiboError {
	if e, ok := weiboErrors[code]; ok {
		return e
	}
	return weiboError{"error", fmt.Sprintf("error %d", code)}
}

// errorPage is what Weibo's authorize page shows when the app's request
// is wrong: the error code and name.
func errorPage(w http.ResponseWriter, code int) {
	e := lookup(code)
	oauthsandbox.ErrorPage(w, http.StatusBadRequest, fmt.Sprintf("error:%s error_code:%d", e.name, code), e.description)
}

// writeError answers HTTP 400 with Weibo's error JSON: error, error_code
// and request; the OAuth paths add error_uri and error_description.
func writeError(w http.ResponseWriter, r *http.Request, code int) {
	e := lookup(code)
	body := struct {
		Error            string `json:"error"`
		ErrorCode        int    `json:"error_code"`
		Request          string `json:"request"`
		ErrorURI         string `json:"error_uri,omitempty"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{Error: e.name, ErrorCode: code, Request: r.URL.Path}
	if e.description != "" {
		body.ErrorURI, body.ErrorDescription = r.URL.Path, e.description
	}
	writeJSON(w, http.StatusBadRequest, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed structs are written
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(body)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
