package oauthsandbox

import (
	"context"
	"net/http"
	"net/url"
	"sync"
)

// App is a fake provider's app as the fake serves it: its id, its secret
// and the State of its codes and tokens, fixed by the first call to Fix.
// The zero value is ready; it is safe for concurrent use.
type App struct {
	once       sync.Once
	id, secret string
	state      State
}

// Fix fixes the app on the first call, from what the fake was configured
// with: id, secret and state, each of which may be empty (nil), for
// defaults' id and secret and a new memory State. Later calls change
// nothing.
func (a *App) Fix(id, secret string, state State, defaults func() (id, secret string)) {
	a.once.Do(func() {
		a.id, a.secret, a.state = id, secret, state
		defID, defSecret := defaults()
		if a.id == "" {
			a.id = defID
		}
		if a.secret == "" {
			a.secret = defSecret
		}
		if a.state == nil {
			a.state = NewMemoryState()
		}
	})
}

// ID is the app's id (client_id, appid); Fix must have been called.
func (a *App) ID() string { return a.id }

// Secret is the app's secret; Fix must have been called.
func (a *App) Secret() string { return a.secret }

// State is the app's State; Fix must have been called.
func (a *App) State() State { return a.state }

// StateParam returns the state parameter of an authorization request's
// query, to pass back to the redirect_uri unchanged (nothing when the
// request had none).
func StateParam(q url.Values) url.Values {
	back := url.Values{}
	if q.Has("state") {
		back.Set("state", q.Get("state"))
	}
	return back
}

// IssueAndRedirect is the end of an authorization the user allowed: it
// records code for g and redirects to g.RedirectURI with code added to
// back (StateParam's). When the State fails it writes nothing and returns
// the error, for the fake to answer in its provider's form.
func (a *App) IssueAndRedirect(ctx context.Context, w http.ResponseWriter, r *http.Request, code string, g Grant, back url.Values) error {
	if err := a.state.IssueCode(ctx, code, g); err != nil {
		return err
	}
	back.Set("code", code)
	Redirect(w, r, g.RedirectURI, back)
	return nil
}
