package main

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestBrowserOIDCLogin: in Chromium, an app's login button leads to the
// hub's QR page; the QR read off the screenshot is scanned and confirmed
// by the sandbox phone, and the app, a standard OIDC client, shows the
// user.
func TestBrowserOIDCLogin(t *testing.T) {
	zbar := requireZbarimg(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()
	h := startHub(t, map[string]string{"LOGINHUB_OIDC_CLIENTS": writeClients(t, appURL+"/callback")})

	hub, err := gooidc.NewProvider(context.Background(), h.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "rp", ClientSecret: rpSecret, Endpoint: hub.Endpoint(), RedirectURL: appURL + "/callback",
		Scopes: []string{gooidc.ScopeOpenID, "profile"}}
	verifier := hub.Verifier(&gooidc.Config{ClientID: "rp"})
	const state, nonce = "app-state", "app-nonce"
	pkce := oauth2.GenerateVerifier()
	app := httptest.NewUnstartedServer(http.NewServeMux())
	app.Listener.Close()
	app.Listener = ln
	mux := app.Config.Handler.(*http.ServeMux)
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)), http.StatusFound)
	})
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("state") != state {
			http.Error(w, "bad state", http.StatusBadRequest)
			return
		}
		tok, err := conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := verifier.Verify(r.Context(), raw)
		if err != nil || id.Nonce != nonce {
			http.Error(w, "id_token refused", http.StatusBadGateway)
			return
		}
		ui, err := hub.UserInfo(r.Context(), oauth2.StaticTokenSource(tok))
		var profile struct{ Name string }
		if err != nil || ui.Claims(&profile) != nil {
			http.Error(w, "userinfo failed", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<p id="who">Welcome, ` + html.EscapeString(profile.Name) + ` (` + html.EscapeString(id.Subject) + `)</p>`))
	})
	app.Start()
	t.Cleanup(app.Close)

	b := newBrowser(t)
	b.hub = h
	b.do("open the app's login", chromedp.EmulateViewport(1000, 700), chromedp.Navigate(appURL+"/login"),
		chromedp.WaitReady(chromedp.CSS("body")))
	b.waitJS("the hub's login page", `location.pathname === "/oauth2/authorize/login"`)
	b.waitJS(`#status data-state "pending"`, statusJS("pending"))
	_, decoded := shownQR(b, zbar, func(string) bool { return true })
	ticket := ticketOfQRURL(t, h, decoded)

	frank := phoneLogin(t, h, "frank")
	phone := client("")
	r := call(t, phone, "POST", h.URL+"/v1/qr/scan", frank.AccessToken, map[string]string{"ticket": ticket})
	mustStatus(t, "scan the QR read off the page", r, 200)
	var scan struct{ ID string }
	r.decode(t, &scan)
	b.waitJS(`#status data-state "scanned"`, statusJS("scanned"))
	mustStatus(t, "confirm", call(t, phone, "POST", h.URL+"/v1/qr/tickets/"+url.PathEscape(scan.ID)+"/confirm", frank.AccessToken, nil), 200)

	// The page navigates away twice (the provider's callback, then the
	// app): a wait that a navigation interrupts starts again.
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`location.pathname === "/callback" && !!document.getElementById("who")`,
			chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("waiting for the app's page: %v\n%s", err, b.report())
		}
	}
	who := evalJS[string](b, "read the app's page", `document.getElementById("who").textContent`)
	if !strings.Contains(who, "frank") {
		t.Fatalf("the app shows %q, want the user frank\n%s", who, b.report())
	}
}
