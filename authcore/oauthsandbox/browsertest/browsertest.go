// Package browsertest plays a browser on a sandbox provider's consent page
// (oauthsandbox.ReadConsent) in tests: it answers the page as a user would
// and reports where the provider sends the browser, failing the test on
// any transport error. It is a package of its own so that the hub's binary
// does not link the testing package.
package browsertest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Answer is what a provider answered a choice on its consent page.
type Answer struct {
	Status   int
	Location *url.URL // where it redirects the browser; nil when it does not
	Body     string
}

// Choose answers the consent page at authorizeURL as a browser does when
// the user submits it: it POSTs form (user=<name>, or deny=1) to the same
// URL and returns the answer without following its redirect.
func Choose(t testing.TB, authorizeURL string, form url.Values) Answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, authorizeURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	a := Answer{Status: resp.StatusCode, Body: string(body)}
	if loc, err := resp.Location(); err == nil {
		a.Location = loc
	}
	return a
}

// Login allows as user on the consent page at authorizeURL and returns the
// query the provider redirects the browser to the redirect_uri with (code
// and state). It fails t if the provider answers anything but a redirect.
func Login(t testing.TB, authorizeURL, user string) url.Values {
	t.Helper()
	a := Choose(t, authorizeURL, url.Values{"user": {user}})
	if a.Location == nil {
		t.Fatalf("browsertest: the consent page answered %d, not a redirect: %.300s", a.Status, a.Body)
	}
	return a.Location.Query()
}
