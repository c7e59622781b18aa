package oauthsandbox

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Consent is what the consent page of a sandbox authorize URL shows: the
// page that stands for the provider's login and consent screens.
type Consent struct {
	Provider string // "QQ", "Weibo", "WeChat"
	App      string // the app asking, by its client id or appid
	Scope    string // as requested
}

// maxFormBytes bounds a consent POST's body.
const maxFormBytes = 16 << 10

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Provider}} sandbox: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>{{.Provider}} (sandbox)</h1>
<p>App <code>{{.App}}</code> asks to know who you are{{if .Scope}} (scope <code>{{.Scope}}</code>){{end}}.</p>
{{if .Problem}}<p role="alert"><strong>{{.Problem}}</strong></p>{{end}}
<form method="post">
<label>Sandbox user <input name="user" value="{{.User}}" required maxlength="{{.Max}}" autofocus></label>
<button type="submit">Allow</button>
<button type="submit" name="deny" value="1" formnovalidate>Deny</button>
</form>
<p>A sandbox user name is one person everywhere: the same name in the mini-program, QQ, Weibo and WeChat website login is the same user.</p>
</body></html>
`))

// ReadConsent runs the consent page of an authorize URL whose parameters
// the fake has checked. GET shows an HTML form that POSTs back to the same
// URL (its query included) either user=<sandbox user name> or deny=1. On
// such a POST it returns the user allowed or deny true, and the fake then
// redirects as the provider does. Otherwise it has answered itself (the
// page, 400 with the page again for a name that is not 1 to
// MaxUserName printable characters, 405 for another method) and
// ok is false.
func ReadConsent(w http.ResponseWriter, r *http.Request, c Consent) (user string, deny, ok bool) {
	data := struct {
		Consent
		User, Problem string
		Max           int
	}{Consent: c, Max: MaxUserName}
	status := http.StatusOK
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if r.PostFormValue("deny") != "" {
			return "", true, true
		}
		name := r.PostFormValue("user")
		if ValidUserName(name) {
			return name, false, true
		}
		data.User = name
		data.Problem = fmt.Sprintf("A sandbox user name is 1 to %d printable characters.", MaxUserName)
		status = http.StatusBadRequest
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return "", false, false
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	consentPage.Execute(w, data)
	return "", false, false
}

// MaxUserName is the longest sandbox user name, in characters.
const MaxUserName = 64

// ValidUserName reports whether name is a sandbox user name: 1 to
// MaxUserName printable characters of valid UTF-8. Every fake of the
// sandbox (the mini-program's wechattest too) holds names to it, since a
// name is one person everywhere.
func ValidUserName(name string) bool {
	n := utf8.RuneCountInString(name)
	return n > 0 && n <= MaxUserName && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0
}

// RedirectAllowed reports whether uri may be an authorization request's
// redirect_uri: exactly one of registered, or, when none is registered,
// any absolute http or https URL without a fragment. The providers compare
// with the registered callback domain; the fakes compare exactly, so that a
// client sending a callback other than the one configured fails here first.
func RedirectAllowed(registered []string, uri string) bool {
	if len(registered) > 0 {
		for _, r := range registered {
			if r == uri {
				return true
			}
		}
		return false
	}
	u, err := url.Parse(uri)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == ""
}

// Redirect answers 302 Found to redirectURI with params added to its
// query, as providers send the user back with code and state.
func Redirect(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		ErrorPage(w, http.StatusBadRequest, "redirect_uri", "redirect_uri is not a URL")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Code}}</title></head>
<body><h1>{{.Code}}</h1><p>{{.Message}}</p></body></html>
`))

// ErrorPage answers status with an HTML page that shows code and message:
// what a provider's authorize URL shows a user when the app's request is
// wrong (unknown app, redirect_uri not registered, ...), since it cannot
// redirect to a callback it does not trust.
func ErrorPage(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	errorPage.Execute(w, struct{ Code, Message string }{code, message})
}
