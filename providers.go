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

	// QQ.
	qcfg := qq.Config{BaseURL: cfg.QQBaseURL, AppID: cfg.QQAppID, AppKey: cfg.QQAppKey, HTTPClient: e.http, Logger: e.log}
	if qcfg.AppID == "" && cfg.Sandbox() {
		id, candidate := qqtest.DefaultApp()
		key, err := sharedSecret(ctx, state(authcore.ProviderQQ), id, candidate)
		if err != nil {
			return tp, fmt.Errorf("sandbox qq: %w", err)
		}
		tp.fakes[authcore.ProviderQQ] = &qqtest.Server{AppID: id, AppKey: key, State: state(authcore.ProviderQQ), RedirectURIs: callback("qq")}
		qcfg.AppID, qcfg.AppKey, qcfg.BaseURL = id, key, e.sandboxBase+"/sandbox/qq"
	}
	if qcfg.AppID != "" {
		p, err := qq.New(qcfg)
		if err != nil {
			return tp, err
		}
		tp.providers[authcore.ProviderQQ] = p
	}

	// Weibo.
	wcfg := weibo.Config{BaseURL: cfg.WeiboBaseURL, ClientID: cfg.WeiboAppKey, ClientSecret: cfg.WeiboSecret, HTTPClient: e.http, Logger: e.log}
	if wcfg.ClientID == "" && cfg.Sandbox() {
		id, candidate := weibotest.DefaultApp()
		secret, err := sharedSecret(ctx, state(authcore.ProviderWeibo), id, candidate)
		if err != nil {
			return tp, fmt.Errorf("sandbox weibo: %w", err)
		}
		tp.fakes[authcore.ProviderWeibo] = &weibotest.Server{AppKey: id, AppSecret: secret, State: state(authcore.ProviderWeibo), RedirectURIs: callback("weibo")}
		wcfg.ClientID, wcfg.ClientSecret, wcfg.BaseURL = id, secret, e.sandboxBase+"/sandbox/weibo"
	}
	if wcfg.ClientID != "" {
		p, err := weibo.New(wcfg)
		if err != nil {
			return tp, err
		}
		tp.providers[authcore.ProviderWeibo] = p
	}

	// WeChat website login.
	ccfg := wechatweb.Config{OpenBaseURL: cfg.WeChatWebBaseURL, APIBaseURL: cfg.WeChatWebBaseURL, AppID: cfg.WeChatWebAppID,
		Secret: cfg.WeChatWebSecret, HTTPClient: e.http, Logger: e.log}
	if ccfg.AppID == "" && cfg.Sandbox() {
		id, candidate := wechatwebtest.DefaultApp()
		secret, err := sharedSecret(ctx, state(authcore.ProviderWeChatWeb), id, candidate)
		if err != nil {
			return tp, fmt.Errorf("sandbox wechat_web: %w", err)
		}
		tp.fakes[authcore.ProviderWeChatWeb] = &wechatwebtest.Server{AppID: id, Secret: secret, State: state(authcore.ProviderWeChatWeb),
			RedirectURIs: callback("wechat_web")}
		base := e.sandboxBase + "/sandbox/wechat_web"
		ccfg.AppID, ccfg.Secret, ccfg.OpenBaseURL, ccfg.APIBaseURL = id, secret, base, base
	}
	if ccfg.AppID != "" {
		p, err := wechatweb.New(ccfg)
		if err != nil {
			return tp, err
		}
		tp.providers[authcore.ProviderWeChatWeb] = p
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
