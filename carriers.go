package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/carrier"
	"github.com/loginhub/loginhub/authcore/carrier/carriertest"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// carrierConfig is carrier one-click login's settings.
type carrierConfig struct {
	Route                     string        // LOGINHUB_CARRIER_ROUTE: direct or aliyun; "": direct with a China Mobile app, else aliyun
	CMCCAppID, CMCCAppKey     string        // China Mobile's app (route direct)
	AliyunKeyID, AliyunKey    string        // Aliyun AccessKey for Dypnsapi
	CMCCBaseURL, DypnsBaseURL string        // "": the carriers' own endpoints, or this hub's sandbox
	BreakerCoolDown           time.Duration // 10s
}

func loadCarrierConfig(get func(string) string) (carrierConfig, error) {
	c := carrierConfig{
		Route:     get("LOGINHUB_CARRIER_ROUTE"),
		CMCCAppID: get("LOGINHUB_CMCC_APPID"), CMCCAppKey: get("LOGINHUB_CMCC_APPKEY"),
		AliyunKeyID: get("LOGINHUB_ALIYUN_ACCESS_KEY_ID"), AliyunKey: get("LOGINHUB_ALIYUN_ACCESS_KEY_SECRET"),
		CMCCBaseURL:  strings.TrimRight(get("LOGINHUB_CMCC_BASE_URL"), "/"),
		DypnsBaseURL: strings.TrimRight(get("LOGINHUB_DYPNS_BASE_URL"), "/"),
	}
	var err error
	c.BreakerCoolDown, err = time.ParseDuration(get("LOGINHUB_CARRIER_BREAKER_COOLDOWN"))
	return c, wrapSetting("LOGINHUB_CARRIER_BREAKER_COOLDOWN", err)
}

// configured reports whether any carrier credential is set: then carriers
// are real, whether or not the sandbox is on.
func (c carrierConfig) configured() bool { return c.CMCCAppID != "" || c.AliyunKeyID != "" }

// route resolves LOGINHUB_CARRIER_ROUTE's default.
func (c carrierConfig) route() string {
	if c.Route != "" {
		return c.Route
	}
	if c.CMCCAppID != "" {
		return carrier.RouteDirect
	}
	return carrier.RouteAliyun
}

func (c carrierConfig) validate() []error {
	var errs []error
	switch c.Route {
	case "", carrier.RouteDirect, carrier.RouteAliyun:
	default:
		errs = append(errs, fmt.Errorf("LOGINHUB_CARRIER_ROUTE %q: want direct or aliyun", c.Route))
	}
	if (c.CMCCAppID == "") != (c.CMCCAppKey == "") {
		errs = append(errs, errors.New("LOGINHUB_CMCC_APPID and LOGINHUB_CMCC_APPKEY go together: set both, or neither"))
	}
	if (c.AliyunKeyID == "") != (c.AliyunKey == "") {
		errs = append(errs, errors.New("LOGINHUB_ALIYUN_ACCESS_KEY_ID and LOGINHUB_ALIYUN_ACCESS_KEY_SECRET go together: set both, or neither"))
	}
	if c.configured() {
		switch r := c.route(); {
		case r == carrier.RouteDirect && c.CMCCAppID == "":
			errs = append(errs, errors.New("LOGINHUB_CARRIER_ROUTE=direct needs LOGINHUB_CMCC_APPID and LOGINHUB_CMCC_APPKEY"))
		case r == carrier.RouteAliyun && c.CMCCAppID != "":
			errs = append(errs, errors.New("LOGINHUB_CMCC_APPID is for LOGINHUB_CARRIER_ROUTE=direct, not aliyun"))
		case r == carrier.RouteAliyun && c.AliyunKeyID == "":
			errs = append(errs, errors.New("LOGINHUB_CARRIER_ROUTE=aliyun needs LOGINHUB_ALIYUN_ACCESS_KEY_ID and _SECRET"))
		}
	}
	for env, v := range map[string]string{"LOGINHUB_CMCC_BASE_URL": c.CMCCBaseURL, "LOGINHUB_DYPNS_BASE_URL": c.DypnsBaseURL} {
		if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "") {
			errs = append(errs, fmt.Errorf("%s %q: want an http(s) URL without query", env, v))
		}
	}
	if c.BreakerCoolDown <= 0 {
		errs = append(errs, errors.New("LOGINHUB_CARRIER_BREAKER_COOLDOWN must be positive, e.g. 10s"))
	}
	return errs
}

// carrierEnv is what building carrier login needs from run.
type carrierEnv struct {
	cfg         Config
	sandboxBase string             // this hub's own loopback URL, for the client of its fake
	state       oauthsandbox.State // the fake's shared state (Redis); nil: in memory
	http        *http.Client       // run closes its idle connections at shutdown
	log         *slog.Logger
	reg         prometheus.Registerer
}

// newCarriers returns carrier login: real with credentials; against the
// fake the sandbox serves (the second result, mounted at
// /sandbox/carrier) without them when the sandbox is on; else nil, and
// /v1/carrier answers not_found. Each call is counted in reg.
func newCarriers(ctx context.Context, e carrierEnv) (authcore.Carriers, http.Handler, error) {
	cc := e.cfg.Carrier
	gcfg := carrier.Config{
		Route: cc.route(), CMCCAppID: cc.CMCCAppID, CMCCAppKey: cc.CMCCAppKey,
		AliyunAccessKeyID: cc.AliyunKeyID, AliyunAccessKeySecret: cc.AliyunKey,
		CMCCBaseURL: cc.CMCCBaseURL, DypnsBaseURL: cc.DypnsBaseURL,
		HTTPClient: e.http, Logger: e.log, BreakerCoolDown: cc.BreakerCoolDown,
	}
	var fake *carriertest.Server
	switch {
	case cc.configured():
	case e.cfg.Sandbox():
		appID, appCandidate := carriertest.DefaultCMCC()
		keyID, keyCandidate := carriertest.DefaultAliyun()
		appKey, err := sharedSecret(ctx, e.state, appID, appCandidate)
		if err != nil {
			return nil, nil, fmt.Errorf("sandbox carrier: %w", err)
		}
		secret, err := sharedSecret(ctx, e.state, keyID, keyCandidate)
		if err != nil {
			return nil, nil, fmt.Errorf("sandbox carrier: %w", err)
		}
		fake = &carriertest.Server{CMCCAppID: appID, CMCCAppKey: appKey, AliyunKeyID: keyID, AliyunSecret: secret, State: e.state}
		gcfg.AliyunAccessKeyID, gcfg.AliyunAccessKeySecret = keyID, secret
		if gcfg.Route == carrier.RouteDirect {
			gcfg.CMCCAppID, gcfg.CMCCAppKey = appID, appKey
		}
		base := e.sandboxBase + "/sandbox/carrier"
		gcfg.CMCCBaseURL, gcfg.DypnsBaseURL = base+"/cmcc", base+"/aliyun"
	default:
		return nil, nil, nil
	}
	gcfg.Observe = carrierMetrics(e.reg)
	g, err := carrier.New(gcfg)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range g.Carriers() {
		e.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "loginhub_carrier_breaker_open",
			Help:        "1 while the circuit breaker around the carrier is open (its logins answer 503 with fallback sms at once), else 0.",
			ConstLabels: prometheus.Labels{"carrier": c},
		}, func() float64 {
			if g.BreakerState(c) == "open" {
				return 1
			}
			return 0
		}))
	}
	if fake == nil {
		return g, nil, nil
	}
	return g, fake, nil
}

// carrierMetrics counts carrier calls in reg: loginhub_carrier_calls_total
// {carrier, route, op, outcome} (the success rate is outcome="ok" over all)
// and loginhub_carrier_call_seconds{carrier, route} (calls that were sent).
func carrierMetrics(reg prometheus.Registerer) func(carrier.Call) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loginhub_carrier_calls_total",
		Help: "Calls to the carriers' number authentication by carrier, route (cmcc, aliyun), op (number, verify) and outcome (ok, refused, failed, timeout, misconfigured, breaker_open).",
	}, []string{"carrier", "route", "op", "outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "loginhub_carrier_call_seconds",
		Help:    "How long calls to the carriers took, breaker-refused ones excluded.",
		Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3},
	}, []string{"carrier", "route"})
	reg.MustRegister(calls, latency)
	return func(c carrier.Call) {
		calls.WithLabelValues(c.Carrier, c.Route, c.Op, c.Outcome).Inc()
		if c.Outcome != carrier.OutcomeBreakerOpen {
			latency.WithLabelValues(c.Carrier, c.Route).Observe(c.Duration.Seconds())
		}
	}
}
