package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/oidc"
	"github.com/loginhub/loginhub/authcore/qq"
	"github.com/loginhub/loginhub/authcore/qq/qqtest"
	"github.com/loginhub/loginhub/authcore/wechatweb"
	"github.com/loginhub/loginhub/authcore/wechatweb/wechatwebtest"
	"github.com/loginhub/loginhub/authcore/weibo"
	"github.com/loginhub/loginhub/authcore/weibo/weibotest"
)

// thirdParty is the hub's third-party logins: the providers by the name of
// their identities, and the fakes the sandbox serves, by route name
// (mounted at /sandbox/<name>).
type thirdParty struct {
	providers map[string]authcore.OAuthProvider
	fakes     map[string]http.Handler
}

// thirdPartyEnv is what building the third-party logins needs from run.
type thirdPartyEnv struct {
	cfg         Config
	sandboxBase string                               // this hub's own loopback URL, for clients of its fakes
	fakeState   func(name string) oauthsandbox.State // the fakes' shared state (Redis); nil: each fake in memory
	http        *http.Client                         // for every provider; run closes its idle connections at shutdown
	log         *slog.Logger
}

// newThirdParty builds QQ, Weibo and WeChat website login, each with its
// credentials or, without them and with the sandbox on, against the fake
// the hub serves; and each OpenID Connect upstream.
func newThirdParty(ctx context.Context, e thirdPartyEnv) (thirdParty, error) {
	tp := thirdParty{providers: map[string]authcore.OAuthProvider{}, fakes: map[string]http.Handler{}}
	cfg := e.cfg
	callback := func(route string) []string { return []string{cfg.PublicURL + "/v1/oauth/" + route + "/callback"} }
	state := func(name string) oauthsandbox.State {
		if e.fakeState == nil {
			return nil
		}
		return e.fakeState(name)
	}

	// Each built-in provider: its credentials, or else, with the sandbox
	// on, the fake this hub serves at /sandbox/<name> and its app.
	for _, b := range []struct {
		name, id, secret, base string
		defaultApp             func() (id, secret string)
		fake                   func(id, secret string, st oauthsandbox.State, callbacks []string) http.Handler
		provider               func(id, secret, base string) (authcore.OAuthProvider, error)
	}{
		{authcore.ProviderQQ, cfg.QQAppID, cfg.QQAppKey, cfg.QQBaseURL, qqtest.DefaultApp,
			func(id, secret string, st oauthsandbox.State, cb []string) http.Handler {
				return &qqtest.Server{AppID: id, AppKey: secret, State: st, RedirectURIs: cb}
			},
			func(id, secret, base string) (authcore.OAuthProvider, error) {
				return qq.New(qq.Config{BaseURL: base, AppID: id, AppKey: secret, HTTPClient: e.http, Logger: e.log})
			}},
		{authcore.ProviderWeibo, cfg.WeiboAppKey, cfg.WeiboSecret, cfg.WeiboBaseURL, weibotest.DefaultApp,
			func(id, secret string, st oauthsandbox.State, cb []string) http.Handler {
				return &weibotest.Server{AppKey: id, AppSecret: secret, State: st, RedirectURIs: cb}
			},
			func(id, secret, base string) (authcore.OAuthProvider, error) {
				return weibo.New(weibo.Config{BaseURL: base, ClientID: id, ClientSecret: secret, HTTPClient: e.http, Logger: e.log})
			}},
		{authcore.ProviderWeChatWeb, cfg.WeChatWebAppID, cfg.WeChatWebSecret, cfg.WeChatWebBaseURL, wechatwebtest.DefaultApp,
			func(id, secret string, st oauthsandbox.State, cb []string) http.Handler {
				return &wechatwebtest.Server{AppID: id, Secret: secret, State: st, RedirectURIs: cb}
			},
			func(id, secret, base string) (authcore.OAuthProvider, error) {
				// The fake serves both the authorize page's host and the API's.
				return wechatweb.New(wechatweb.Config{OpenBaseURL: base, APIBaseURL: base, AppID: id, Secret: secret, HTTPClient: e.http, Logger: e.log})
			}},
	} {
		id, secret, base := b.id, b.secret, b.base
		if id == "" && cfg.Sandbox() {
			defID, candidate := b.defaultApp()
			shared, err := sharedSecret(ctx, state(b.name), defID, candidate)
			if err != nil {
				return tp, fmt.Errorf("sandbox %s: %w", b.name, err)
			}
			tp.fakes[b.name] = b.fake(defID, shared, state(b.name), callback(b.name))
			id, secret, base = defID, shared, e.sandboxBase+"/sandbox/"+b.name
		}
		if id == "" {
			continue
		}
		p, err := b.provider(id, secret, base)
		if err != nil {
			return tp, err
		}
		tp.providers[b.name] = p
	}

	// OpenID Connect upstreams. Lazy: an identity provider that is down
	// while nodes restart must not stop their QR and WeChat logins; its
	// logins answer 503 until its discovery succeeds.
	for _, oc := range cfg.OIDCUpstreams {
		oc.HTTPClient, oc.Logger, oc.Lazy = e.http, e.log, true
		p, err := oidc.New(ctx, oc)
		if err != nil {
			return tp, err
		}
		tp.providers["oidc:"+oc.Name] = p
	}
	return tp, nil
}

// sharedSecret returns the secret of a fake's app: candidate on its own
// (state nil, one node), else the one every node of a sandbox cluster
// agrees on in state, retried while the store comes up.
func sharedSecret(ctx context.Context, state oauthsandbox.State, appID, candidate string) (string, error) {
	if state == nil {
		return candidate, nil
	}
	return retryStart(ctx, func(ctx context.Context) (string, error) { return state.AppSecret(ctx, appID, candidate) })
}

// retryStart calls f until it succeeds, every 200 ms, for at most
// sandboxStartTimeout: a node may start before its store is reachable.
func retryStart(ctx context.Context, f func(ctx context.Context) (string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sandboxStartTimeout)
	defer cancel()
	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	for {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the app secret every node shares: %w", err)
		case <-retry.C:
		}
	}
}
