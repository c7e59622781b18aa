package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/oidc"
	"github.com/loginhub/loginhub/authcore/redisstore"
	"github.com/loginhub/loginhub/authcore/sms"
	"github.com/loginhub/loginhub/authcore/wechat"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
	"github.com/loginhub/loginhub/bench"
	"github.com/loginhub/loginhub/gcpolicy"
	"github.com/loginhub/loginhub/geoip"
	"github.com/loginhub/loginhub/handlers"
	"github.com/loginhub/loginhub/hub"
	"github.com/loginhub/loginhub/hub/redisbroker"
)

// shutdownTimeout bounds a graceful stop: sockets closed, in-flight requests
// finished (a long-poll holds at most 30 s, so those are cut short).
const shutdownTimeout = 10 * time.Second

// run is the whole program: it returns when ctx is cancelled, on SIGINT or
// SIGTERM, or when the server fails. Tests call it with LOGINHUB_ADDR
// 127.0.0.1:0 and read the address from the end of the first stdout line.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if len(args) > 0 && args[0] == "bench" {
		return bench.Run(ctx, args[1:], stdout, stderr)
	}

	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	regions, regionsName, closeRegions, err := openRegions(cfg.GeoIPDB)
	if err != nil {
		return err
	}
	defer closeRegions(log)
	gc, stopGC := gcpolicy.Start(getenv)
	defer stopGC()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	local := ln.Addr().(*net.TCPAddr)
	if !cfg.publicURLSet {
		cfg.PublicURL = defaultPublicURL(local)
	}
	if len(cfg.AllowedOrigins) == 0 {
		cfg.AllowedOrigins = []string{originOf(cfg.PublicURL)}
	}

	signer, vault := cfg.Signer, cfg.Vault
	if signer == nil {
		signer, err = authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	}
	if vault == nil && err == nil {
		vault, err = authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	}
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, broker, sandboxState, closeStore, err := openStore(cfg, log, reg)
	if err != nil {
		return err
	}
	defer closeStore()

	var sandbox *wechattest.Server
	// Our own HTTP client, so shutdown can close its idle connections: in
	// sandbox mode they point at this very server, and http.Server.Shutdown
	// would otherwise wait on them.
	wechatHTTP := &http.Client{Timeout: wechat.DefaultTimeout}
	wcfg := wechat.Config{
		BaseURL: cfg.WeChatBaseURL, AppID: cfg.WeChatAppID, Secret: cfg.WeChatSecret,
		Logger: log, HTTPClient: wechatHTTP, TokenCache: store, BreakerCoolDown: cfg.WeChatBreakerCoolDown,
	}
	if cfg.EmulatedWeChat() {
		sandbox, err = newSandbox(ctx, sandboxState.wechat)
		if err != nil {
			return err
		}
		wcfg.AppID, wcfg.Secret = sandbox.App()
		if wcfg.BaseURL == "" {
			wcfg.BaseURL = loopbackURL(local) + "/sandbox/wechat"
		}
	} else if wcfg.BaseURL == "" {
		wcfg.BaseURL = "https://api.weixin.qq.com"
	}
	wc, err := wechat.New(wcfg)
	if err != nil {
		return err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "loginhub_wechat_breaker_open",
		Help: "1 while the circuit breaker around WeChat's API is open (calls fail fast), else 0.",
	}, func() float64 {
		if wc.BreakerState() == "open" {
			return 1
		}
		return 0
	}))
	// The upstreams the hub serves without: /readyz names the ones that
	// are down, and each has a loginhub_dependency_up series.
	degradable := []handlers.Dependency{{Name: "wechat", Up: wc.Up}}
	for _, dep := range degradable {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "loginhub_dependency_up",
			Help:        "1 while the dependency is taken to be up, 0 while it is down and the hub runs degraded without it.",
			ConstLabels: prometheus.Labels{"dependency": dep.Name},
		}, func() float64 {
			if dep.Up() {
				return 1
			}
			return 0
		}))
	}

	wxCore := wechat.Core{Client: wc, WatermarkMaxAge: cfg.WatermarkMaxAge}
	// SMS: a provider, the sandbox's inbox, or nothing (SMS login disabled).
	var inbox *sms.Inbox
	var smsSender authcore.SMSSender
	switch {
	case cfg.SMSProvider == "aliyun":
		smsSender, err = sms.NewAliyun(sms.AliyunConfig{
			BaseURL: cfg.SMSBaseURL, AccessKeyID: cfg.SMSAccessKeyID, AccessKeySecret: cfg.SMSAccessKeySecret,
			SignName: cfg.SMSSignName, TemplateCode: cfg.SMSTemplate, Logger: log,
		})
	case cfg.SMSProvider == "tencent":
		smsSender, err = sms.NewTencent(sms.TencentConfig{
			BaseURL: cfg.SMSBaseURL, SecretID: cfg.SMSAccessKeyID, SecretKey: cfg.SMSAccessKeySecret, SdkAppID: cfg.SMSSdkAppID,
			SignName: cfg.SMSSignName, TemplateID: cfg.SMSTemplate, Region: cfg.SMSRegion, Logger: log,
		})
	case cfg.EmulatedSMS():
		// In the store, so that every node of a sandbox cluster shows the
		// same messages.
		inbox, err = sms.NewInbox(store)
		smsSender = inbox
	}
	if err != nil {
		return err
	}
	// QQ, Weibo, WeChat website login and OIDC upstreams, each real or
	// emulated by the sandbox. A client of their own, so that shutdown can
	// close its idle connections (in sandbox mode they point at this server).
	oauthHTTP := &http.Client{Timeout: oidc.DefaultTimeout}
	third, err := newThirdParty(ctx, thirdPartyEnv{cfg: cfg, sandboxBase: loopbackURL(local), fakeState: sandboxState.oauth,
		http: oauthHTTP, log: log})
	if err != nil {
		return err
	}
	// Carrier one-click login: real, emulated by the sandbox, or off.
	carrierHTTP := &http.Client{}
	var carrierState oauthsandbox.State
	if sandboxState.oauth != nil {
		carrierState = sandboxState.oauth("carrier")
	}
	carriers, carrierFake, err := newCarriers(ctx, carrierEnv{cfg: cfg, sandboxBase: loopbackURL(local), state: carrierState,
		http: carrierHTTP, log: log, reg: reg})
	if err != nil {
		return err
	}
	svc, err := authcore.NewService(authcore.Config{
		Store: store, Signer: signer, Vault: vault,
		WeChat: wxCore, SMS: smsSender, Limiter: store,
		TicketTTL: cfg.QRTTL, IPBinding: cfg.IPBinding, PublicURL: cfg.PublicURL, Logger: log,
		Regions: regions, Risk: cfg.Risk, OnRiskDecision: riskCounter(reg), OAuth: third.providers,
		Carriers:      carriers,
		Verifiers:     map[string]authcore.Verifier{authcore.VerifierWeChatFace: wechat.FaceVerifier{Client: wc}},
		OnStepUpCheck: stepUpMetrics(reg),
	})
	if err != nil {
		return err
	}

	clientIPs := handlers.NewClientIPs(cfg.TrustedProxies, log)
	allowed := func(origin string) bool { return slices.Contains(cfg.AllowedOrigins, strings.TrimRight(origin, "/")) }
	h := hub.New(hub.Config{
		Tickets: svc, Broker: broker, Logger: log, CheckOrigin: allowed,
		ClientIP: clientIPs.ClientIP, Registerer: reg, MaxSockets: maxSockets(cfg.MaxSockets),
	})
	deps := handlers.Deps{
		Logger: log, Auth: svc, WebSocket: h, Waiter: h, Limiter: store, ClientIPs: clientIPs,
		AllowedOrigin: allowed, TicketRate: cfg.TicketRate, LoginRate: cfg.LoginRate, CallRate: cfg.CallRate,
		HSTS: strings.HasPrefix(cfg.PublicURL, "https://"),
		Ready: func(ctx context.Context) error {
			return errors.Join(store.Ping(ctx), broker.Ping(ctx))
		},
		QR:         handlers.NewQRCache(10000),
		Degradable: degradable,
	}
	if inbox != nil {
		deps.SMSInbox = inbox
	}
	deps.OAuthFakes = third.fakes
	deps.CarrierFake = carrierFake
	if sandbox != nil {
		deps.Sandbox = sandbox
		deps.SandboxUsers = true
		deps.SandboxBanner = cfg.SandboxBeyondLoopback()
	}
	op, err := newOIDCProvider(cfg, store, svc, log)
	if err != nil {
		return err
	}
	if op != nil {
		deps.OIDC = op
	}
	srv := &http.Server{
		Handler:           handlers.Routes(deps),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      45 * time.Second, // long-polls hold up to 30 s
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Run(hubCtx) }()
	// Probes WeChat after each cool-down of its circuit breaker, so that
	// the hub heals by itself even when no one tries to log in.
	healDone := make(chan struct{})
	go func() { wc.Heal(hubCtx); close(healDone) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	if cfg.InternalAddr != "" {
		stopInternal, err := serveInternal(cfg.InternalAddr, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), log)
		if err != nil {
			return err
		}
		defer stopInternal()
	}

	log.Info("loginhub started", "addr", local.String(), "public_url", cfg.PublicURL,
		"sandbox", cfg.Sandbox(), "sms", smsMode(cfg), "store", storeName(cfg), "ip_binding", string(cfg.IPBinding), "gc", gc,
		"regions", regionsName, "risk", string(cfg.Risk))
	if cfg.EmulatedSMS() && !cfg.LoopbackPublicURL() {
		log.Warn("SMS emulated beyond loopback: codes are not sent, anyone can read them at /sandbox/sms and log in as any number",
			"public_url", cfg.PublicURL)
	}
	if cfg.SandboxBeyondLoopback() {
		log.Warn("sandbox on beyond loopback: WeChat is emulated, anyone can log in as any sandbox user, and every page shows a sandbox banner; "+
			"for production set LOGINHUB_WECHAT_APPID and LOGINHUB_WECHAT_SECRET", "public_url", cfg.PublicURL, "sandbox_setting", cfg.SandboxSetting)
	}
	// Last: whoever waits for this line (a newcomer, a test) finds the
	// start-up log complete.
	printFirstContact(stdout, cfg, local)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	}

	// Graceful stop: sockets first (1001, clients move to another node),
	// then in-flight requests, with a fresh timeout.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		log.Warn("closing WebSockets", "err", err)
	}
	wechatHTTP.CloseIdleConnections()
	oauthHTTP.CloseIdleConnections()
	carrierHTTP.CloseIdleConnections()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("draining HTTP requests", "err", err)
	}
	stopHub()
	<-hubDone
	<-healDone
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	log.Info("stopped")
	return nil
}

// riskCounter counts risk decisions in reg as
// loginhub_risk_decisions_total{method, decision, reasons}.
func riskCounter(reg prometheus.Registerer) func(authcore.RiskDecision) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loginhub_risk_decisions_total",
		Help: "Logins judged by risk control: decision pass or step_up, and the reasons that decided it (first_login, no_phone, known_region, known_device, new_region, new_device).",
	}, []string{"method", "decision", "reasons"})
	reg.MustRegister(decisions)
	return func(d authcore.RiskDecision) {
		decision := "pass"
		if d.StepUp {
			decision = "step_up"
		}
		decisions.WithLabelValues(d.Method, decision, strings.Join(d.Reasons, "+")).Inc()
	}
}

// openRegions opens LOGINHUB_GEOIP_DB; without it regions are address
// prefixes. name says which for the start-up log: "prefix", or the path and
// the database's type. closeRegions runs once nothing looks regions up.
func openRegions(path string) (regions authcore.Regions, name string, closeRegions func(*slog.Logger), err error) {
	if path == "" {
		return authcore.PrefixRegions{}, "prefix", func(*slog.Logger) {}, nil
	}
	db, err := geoip.Open(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("LOGINHUB_GEOIP_DB: %w", err)
	}
	closeRegions = func(log *slog.Logger) {
		if err := db.Close(); err != nil {
			log.Warn("closing the GeoIP database", "err", err)
		}
	}
	return db, fmt.Sprintf("%s (%s %s)", path, db.Kind(), db.Detail()), closeRegions, nil
}

// serveInternal serves /metrics and Go's pprof profiles on addr
// (LOGINHUB_INTERNAL_ADDR), a listener of its own: they tell an attacker
// how busy the hub is and what it runs, so they are never reachable
// through the public port.
func serveInternal(addr string, metrics http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("internal listener (LOGINHUB_INTERNAL_ADDR): %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("internal server", "err", err)
		}
	}()
	log.Info("metrics and pprof served", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// sandboxStartTimeout bounds agreeing on the sandbox app's secret at
// start; Redis is retried meanwhile, since a local cluster (the Procfile)
// starts Redis and the nodes together.
const sandboxStartTimeout = 15 * time.Second

// sharedSandbox is the sandbox's state on a shared store: every node of a
// sandbox cluster answers as one WeChat, with one app secret.
type sharedSandbox interface {
	wechattest.State
	// AppSecret returns the secret of the sandbox app appID: candidate
	// unless a node stored one first.
	AppSecret(ctx context.Context, appID, candidate string) (string, error)
}

// newSandbox returns the fake WeChat the hub serves as its sandbox: on its
// own in memory when shared is nil, else on shared, with the secret every
// node agrees on (the hub hands it to any SDK at GET /sandbox/wechat/app
// and sends it itself; behind a load balancer both reach any node).
func newSandbox(ctx context.Context, shared sharedSandbox) (*wechattest.Server, error) {
	// UnionIDs: the sandbox's mini-program is bound to an Open Platform
	// account, so that a sandbox user's mini-program and website logins
	// (the wechat_web fake) share one unionid, as the contract says.
	if shared == nil {
		return &wechattest.Server{UnionIDs: true}, nil
	}
	appID, candidate := wechattest.DefaultApp()
	secret, err := retryStart(ctx, func(ctx context.Context) (string, error) { return shared.AppSecret(ctx, appID, candidate) })
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return &wechattest.Server{AppID: appID, Secret: secret, State: shared, UnionIDs: true}, nil
}

// hubStore is what the hub process keeps its state in: the core's store
// plus the rate-limit counters the handlers need.
type hubStore interface {
	authcore.Store
	authcore.Limiter  // the core's limits (SMS sends, password failures); also handlers.Limiter
	wechat.TokenCache // one WeChat access token per app, shared by every node
	sms.Mailbox       // the sandbox's SMS messages, shared by every node
}

// sandboxStates is where the sandbox's fakes keep their state when the
// hub runs on Redis, so that every node emulates one WeChat, one QQ...; on
// the embedded store both are nil and each fake keeps its own in memory.
type sandboxStates struct {
	wechat sharedSandbox
	oauth  func(provider string) oauthsandbox.State // the QQ, Weibo and WeChat website fakes'
}

// openStore returns the embedded store and broker, or the Redis ones when
// LOGINHUB_REDIS_URL is set, and a function that releases them. With Redis
// it also returns the state the sandbox's fakes keep there (used only when
// the sandbox is on).
func openStore(cfg Config, log *slog.Logger, reg prometheus.Registerer) (hubStore, hub.Broker, sandboxStates, func(), error) {
	if cfg.RedisURL == "" {
		broker := hub.NewMemoryBroker()
		return memstore.New(broker.PublishTicket, nil), broker, sandboxStates{}, func() {}, nil
	}
	rc, err := redisstore.Connect(cfg.RedisURL)
	if err != nil {
		return nil, nil, sandboxStates{}, nil, err
	}
	closeRedis := func() {
		if err := rc.Close(); err != nil {
			log.Warn("closing the Redis client", "err", err)
		}
	}
	store := redisstore.New(rc, redisstore.Options{})
	broker := redisbroker.New(rc, redisbroker.Options{Channels: store, Logger: log, Registerer: reg})
	states := sandboxStates{
		wechat: store.Sandbox(wechattest.DefaultMaxUsers),
		oauth: func(provider string) oauthsandbox.State {
			return oauthsandbox.NewRedisState(rc, "lh:sbx:"+provider) // the key layout: authcore/redisstore/keys.go
		},
	}
	return store, broker, states, closeRedis, nil
}

// smsMode names where SMS codes go, for the start-up log.
func smsMode(cfg Config) string {
	switch {
	case cfg.SMSProvider != "":
		return cfg.SMSProvider
	case cfg.EmulatedSMS():
		return "sandbox (/sandbox/sms)"
	}
	return "off"
}

func storeName(cfg Config) string {
	if cfg.RedisURL == "" {
		return "memory"
	}
	if strings.Contains(cfg.RedisURL, "+cluster://") {
		return "redis cluster"
	}
	return "redis"
}

// maxSockets resolves LOGINHUB_MAX_SOCKETS: "auto" (-1) leaves 1024 file
// descriptors of the open-file limit for HTTP requests, Redis and the rest.
func maxSockets(configured int) int {
	if configured >= 0 {
		return configured
	}
	if limit := openFileLimit(); limit > 0 {
		return max(limit-1024, 64)
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // validated in Config.Validate
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// defaultPublicURL is what a person on this machine types into a browser.
func defaultPublicURL(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return fmt.Sprintf("http://localhost:%d", a.Port)
	}
	return loopbackURL(a)
}

// loopbackURL reaches the listener from this process.
func loopbackURL(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

func originOf(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return publicURL
	}
	return u.Scheme + "://" + u.Host
}

// printFirstContact tells a newcomer, in one line, where to click, which
// WeChat it talks to and where data lives. The line ends with the listening
// address so tests and scripts can read it.
func printFirstContact(w io.Writer, cfg Config, local *net.TCPAddr) {
	pages := fmt.Sprintf("open %s/ (desktop)", cfg.PublicURL)
	mode := "WeChat app " + cfg.WeChatAppID
	if cfg.EmulatedWeChat() {
		pages += fmt.Sprintf(" and %s/sandbox/phone (phone simulator)", cfg.PublicURL)
		mode = "sandbox mode (emulated WeChat)"
	}
	data := "data in memory, lost on restart"
	if cfg.RedisURL != "" {
		data = "data in " + storeName(cfg)
	}
	fmt.Fprintf(w, "loginhub: %s · %s · %s · listening on %s\n", pages, mode, data, local)
}
