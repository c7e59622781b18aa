package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/clients/loginhubclient"
)

// TestClientMiddlewareAgainstHub: an app backend behind
// loginhubclient.Middleware, in front of the real hub, lets a fresh
// session through with its user, refuses it after logout, and answers 503
// once the hub is gone.
func TestClientMiddlewareAgainstHub(t *testing.T) {
	h := startHub(t, nil)
	s := phoneLogin(t, h, "kit")

	// No cache, so that the logout is seen at once.
	hub, err := loginhubclient.New(loginhubclient.Config{BaseURL: h.URL, CacheTTL: -1, Timeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var seen *loginhubclient.Me
	app := httptest.NewServer(hub.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = loginhubclient.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})))
	defer app.Close()
	c := client("")

	mustStatus(t, "the app with a fresh session", call(t, c, "GET", app.URL+"/api", s.AccessToken, nil), 204)
	if seen == nil || seen.User.ID != s.User.ID || seen.User.OpenID != s.User.OpenID || !seen.User.Sandbox ||
		!slices.Contains(seen.Session.AMR, "wx") || seen.Session.AuthTime == nil {
		t.Errorf("the app's handler saw %+v, want user %s (sandbox, amr wx, auth_time)", seen, s.User.ID)
	}

	r := call(t, c, "GET", app.URL+"/api", "", nil)
	if mustStatus(t, "the app without a token", r, 401); r.errorCode() != "unauthorized" {
		t.Errorf("without a token: error %q, want unauthorized", r.errorCode())
	}
	mustStatus(t, "logout", call(t, c, "POST", h.URL+"/v1/session/logout", s.AccessToken, nil), 204)
	r = call(t, c, "GET", app.URL+"/api", s.AccessToken, nil)
	if mustStatus(t, "the app after logout", r, 401); r.errorCode() != "unauthorized" {
		t.Errorf("after logout: error %q, want unauthorized", r.errorCode())
	}

	// The hub goes away: the app says it cannot check, not that the token
	// is bad.
	h.cancel()
	select {
	case <-h.stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("the hub did not stop within 15s")
	}
	if _, err := hub.Check(context.Background(), "any-token"); !errors.Is(err, loginhubclient.ErrUnavailable) {
		t.Fatalf("Check with the hub stopped: %v, want ErrUnavailable", err)
	}
	r = call(t, c, "GET", app.URL+"/api", s.AccessToken, nil)
	if mustStatus(t, "the app with the hub stopped", r, 503); r.errorCode() != "upstream_unavailable" {
		t.Errorf("hub stopped: error %q, want upstream_unavailable", r.errorCode())
	}
	if strings.Contains(h.logs.String(), s.AccessToken) {
		t.Error("the hub logged the access token")
	}
}
