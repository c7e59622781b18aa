package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oidc"
	"github.com/loginhub/loginhub/gcpolicy"
	"github.com/loginhub/loginhub/handlers"
	"github.com/loginhub/loginhub/oidcprovider"
)

// Config is loginhub's configuration, read from the environment and
// overridden by flags of the same name in kebab case without the LOGINHUB_
// prefix (LOGINHUB_PUBLIC_URL → --public-url). Each field's comment says
// what loadConfig gives it when its variable is not set.
type Config struct {
	Addr                  string             // listen address; ":8080", or ":$PORT"
	PublicURL             string             // base of qr_url and links; "": derived from the listen address by run
	RedisURL              string             // "": the embedded in-process store and broker
	Signer                *authcore.Signer   // LOGINHUB_TICKET_KEYS; nil: a random key (embedded only)
	Vault                 *authcore.Vault    // LOGINHUB_DATA_KEY, personal data at rest; nil: a random key (embedded only)
	QRTTL                 time.Duration      // ticket lifetime; 120s
	IPBinding             authcore.IPBinding // strict
	TrustedProxies        []netip.Prefix     // nil: believe no X-Forwarded-For
	AllowedOrigins        []string           // nil: the public URL's origin
	TicketRate            int                // tickets per client address per minute; 30 (0 = unlimited)
	LoginRate             int                // wx and SMS logins per client address per minute, each; 60 (0 = unlimited)
	CallRate              int                // redeem, scan, refresh, phone, face calls per address per minute each; 120 (0 = unlimited)
	WeChatAppID           string             // "" with WeChatSecret "": the sandbox
	WeChatSecret          string
	WeChatBaseURL         string              // "": https://api.weixin.qq.com, or this hub's /sandbox/wechat in sandbox mode
	WatermarkMaxAge       time.Duration       // 0: a watermark's age is not checked
	WeChatBreakerCoolDown time.Duration       // how long WeChat calls fail fast after repeated failures; 10s
	LogLevel              string              // info
	MaxSockets            int                 // WebSockets per node; -1 (auto): the open-file limit less 1024; 0 = no cap
	InternalAddr          string              // "": no /metrics and no pprof; else both on this address, never on Addr
	Risk                  authcore.RiskPolicy // LOGINHUB_RISK: new_region
	GeoIPDB               string              // LOGINHUB_GEOIP_DB: a MaxMind City .mmdb or an ip2region .xdb, opened by run; "": regions are address prefixes
	SandboxSetting        string              // LOGINHUB_SANDBOX: auto, on or off; auto (see Sandbox)
	SMSProvider           string              // LOGINHUB_SMS_PROVIDER: aliyun or tencent; "": SMS emulated when the sandbox is on, else disabled
	SMSAccessKeyID        string              // the provider's AccessKey ID (aliyun) or SecretId (tencent); required with a provider
	SMSAccessKeySecret    string              // its AccessKey secret or SecretKey; required with a provider
	SMSSignName           string              // the approved SMS signature; required with a provider
	SMSTemplate           string              // the approved code template (aliyun TemplateCode, tencent TemplateId); required with a provider
	SMSSdkAppID           string              // tencent's SmsSdkAppId; required with tencent
	SMSRegion             string              // tencent's X-TC-Region; "": ap-guangzhou
	SMSBaseURL            string              // "": the provider's public endpoint
	QQAppID               string              // QQ Connect app: APP ID; "" with QQAppKey "": QQ emulated when the sandbox is on, else no QQ login
	QQAppKey              string              // and its APP Key
	WeiboAppKey           string              // Weibo app: App Key; "" with WeiboSecret "": emulated when the sandbox is on, else no Weibo login
	WeiboSecret           string              // and its App Secret
	WeChatWebAppID        string              // WeChat Open Platform website app: AppID; "" with WeChatWebSecret "": emulated when the sandbox is on, else none
	WeChatWebSecret       string              // and its AppSecret
	QQBaseURL             string              // "": https://graph.qq.com (used with credentials only)
	WeiboBaseURL          string              // "": https://api.weibo.com (used with credentials only)
	WeChatWebBaseURL      string              // "": open.weixin.qq.com and api.weixin.qq.com (used with credentials only)
	OIDCUpstreams         []oidc.Config       // LOGINHUB_OIDC_UPSTREAMS and each one's LOGINHUB_OIDC_<NAME>_*; nil: none
	Carrier               carrierConfig       // LOGINHUB_CARRIER_*, LOGINHUB_CMCC_*, LOGINHUB_ALIYUN_*, LOGINHUB_DYPNS_BASE_URL (carriers.go)

	// The OpenID Connect provider.
	OIDCClients []oidcprovider.Client     // LOGINHUB_OIDC_CLIENTS, read and validated at start; nil: the hub is no OpenID Connect provider
	SigningKeys []oidcprovider.SigningKey // LOGINHUB_SIGNING_KEYS; nil: a random key per process (embedded only)

	publicURLSet bool // PublicURL was configured, not derived
	// The ticket or data keys include a published development key (the
	// Procfile's): anyone can forge tickets or open sealed data with it.
	publishedTicketKey, publishedDataKey bool
}

// publishedKey reports whether secret is one of the development keys this
// repository publishes (the Procfile's local cluster), whatever its key id.
// Such keys are accepted only with a loopback public URL: on one machine
// they protect nothing anyone else can reach, and the local cluster keeps
// starting with a plain `goreman start`.
func publishedKey(secret []byte) bool {
	switch string(secret) {
	case "local-development-key-not-for-prod", // LOGINHUB_TICKET_KEYS=dev:bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZA
		"data-key-local-dev-not-for-prod!": // LOGINHUB_DATA_KEY=dev:ZGF0YS1rZXktbG9jYWwtZGV2LW5vdC1mb3ItcHJvZCE=
		return true
	}
	return false
}

// Sandbox reports whether the sandbox is on: LOGINHUB_SANDBOX=on, or auto
// on a first run (the embedded store and a loopback public URL). Anything
// else is a deployment, where a forgotten credential must stop the hub
// rather than quietly log people in through an emulated WeChat.
func (c Config) Sandbox() bool {
	switch c.SandboxSetting {
	case "on":
		return true
	case "off":
		return false
	}
	return c.RedisURL == "" && c.LoopbackPublicURL()
}

// EmulatedWeChat reports whether the hub serves its own fake WeChat: the
// sandbox is on and no credentials are configured (with credentials
// WeChat is real, sandbox on or not).
func (c Config) EmulatedWeChat() bool {
	return c.Sandbox() && c.WeChatAppID == "" && c.WeChatSecret == ""
}

// EmulatedSMS reports whether SMS codes go to the sandbox's inbox (GET
// /sandbox/sms) instead of a provider: the sandbox is on and no provider
// is configured. With neither, SMS login is disabled.
func (c Config) EmulatedSMS() bool {
	return c.Sandbox() && c.SMSProvider == ""
}

// SandboxBeyondLoopback reports whether something is emulated on a hub
// that people reach from other machines: then the start-up log warns and
// every page shows a banner, so a staging cluster is never mistaken for
// production.
func (c Config) SandboxBeyondLoopback() bool {
	return c.EmulatedWeChat() && !c.LoopbackPublicURL()
}

// LoopbackPublicURL reports whether the public URL names this machine
// (localhost, *.localhost, 127.0.0.0/8, ::1). A public URL that is not
// configured is derived from the listen address (run's defaultPublicURL):
// http://localhost:<port> when listening on every interface, so it counts
// as loopback; else the listen address's own host decides.
func (c Config) LoopbackPublicURL() bool {
	host := ""
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil {
			return false
		}
		host = u.Hostname()
	} else {
		h, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return false
		}
		if h == "" {
			return true // derived: http://localhost:<port>
		}
		host = h
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.IsLoopback() || a.IsUnspecified() // an unspecified listen address derives localhost
}

// setting is one configuration variable.
type setting struct {
	env, def, usage string
}

// secretSettings are not the defaults of their flags, so that usage text
// (-h, a mistyped flag) never prints them: they are read from the
// environment after parsing.
var secretSettings = map[string]bool{
	"LOGINHUB_REDIS_URL":                true, // may hold a password
	"LOGINHUB_TICKET_KEYS":              true,
	"LOGINHUB_DATA_KEY":                 true,
	"LOGINHUB_WECHAT_SECRET":            true,
	"LOGINHUB_SMS_ACCESS_KEY_SECRET":    true,
	"LOGINHUB_CMCC_APPKEY":              true,
	"LOGINHUB_ALIYUN_ACCESS_KEY_SECRET": true,
	"LOGINHUB_QQ_APPKEY":                true,
	"LOGINHUB_WEIBO_SECRET":             true,
	"LOGINHUB_WECHAT_WEB_SECRET":        true,
	"LOGINHUB_SIGNING_KEYS":             true,
}

var settings = []setting{
	{"LOGINHUB_ADDR", "", "listen address (default :8080, or :$PORT)"},
	{"LOGINHUB_PUBLIC_URL", "", "base of qr_url and page links (default http://localhost:<port>)"},
	{"LOGINHUB_REDIS_URL", "", "redis:// URL; empty = embedded in-process store"},
	{"LOGINHUB_TICKET_KEYS", "", "kid:base64key,...; first signs, all verify (default: random per process)"},
	{"LOGINHUB_DATA_KEY", "", "kid:base64key,... (32-byte keys) sealing personal data at rest; first seals, all open (default: random per process)"},
	{"LOGINHUB_QR_TTL", "120s", "ticket lifetime"},
	{"LOGINHUB_IP_BINDING", "strict", "strict, subnet or off"},
	{"LOGINHUB_TRUSTED_PROXIES", "", "CIDRs whose X-Forwarded-For is believed"},
	{"LOGINHUB_ALLOWED_ORIGINS", "", "WebSocket/CORS origins (default: the public URL's origin)"},
	{"LOGINHUB_TICKET_RATE", "30", "tickets per client address per minute; 0 = unlimited"},
	{"LOGINHUB_LOGIN_RATE", "60", "login calls (/v1/wx/login, /v1/sms/login, /v1/password/login, /v1/step-up) per client address per minute, each; 0 = unlimited"},
	{"LOGINHUB_CALL_RATE", "120", "redeem, scan, refresh, phone-number and face calls per client address per minute, each (a tenth of it per user); 0 = unlimited"},
	{"LOGINHUB_SANDBOX", "auto", "auto, on or off: emulate WeChat when its credentials are empty, and SMS when LOGINHUB_SMS_PROVIDER is; auto = on only with the embedded store and a loopback public URL"},
	{"LOGINHUB_WECHAT_APPID", "", "mini-program appid (empty = emulated when the sandbox is on)"},
	{"LOGINHUB_WECHAT_SECRET", "", "mini-program secret (empty = emulated when the sandbox is on)"},
	{"LOGINHUB_WECHAT_BASE_URL", "", "WeChat API base (default https://api.weixin.qq.com; sandbox: this hub)"},
	{"LOGINHUB_SMS_PROVIDER", "", "SMS provider: aliyun (Dysmsapi) or tencent (SMS API 3.0); empty = SMS emulated when the sandbox is on (codes at /sandbox/sms), else SMS login disabled"},
	{"LOGINHUB_SMS_ACCESS_KEY_ID", "", "the SMS provider's AccessKey ID (aliyun) or SecretId (tencent)"},
	{"LOGINHUB_SMS_ACCESS_KEY_SECRET", "", "the SMS provider's AccessKey secret (aliyun) or SecretKey (tencent)"},
	{"LOGINHUB_SMS_SIGN_NAME", "", "the approved SMS signature (签名)"},
	{"LOGINHUB_SMS_TEMPLATE", "", "the approved code template: aliyun TemplateCode (variable ${code}) or tencent TemplateId (parameter {1})"},
	{"LOGINHUB_SMS_SDK_APP_ID", "", "tencent only: the SMS application's SdkAppId"},
	{"LOGINHUB_SMS_REGION", "", "tencent only: X-TC-Region (default ap-guangzhou)"},
	{"LOGINHUB_SMS_BASE_URL", "", "the SMS provider's API base (default https://dysmsapi.aliyuncs.com or https://sms.tencentcloudapi.com)"},
	{"LOGINHUB_QQ_APPID", "", "QQ Connect app's APP ID (empty with LOGINHUB_QQ_APPKEY = QQ login emulated when the sandbox is on, else off)"},
	{"LOGINHUB_QQ_APPKEY", "", "QQ Connect app's APP Key"},
	{"LOGINHUB_WEIBO_APPKEY", "", "Weibo app's App Key (empty with LOGINHUB_WEIBO_SECRET = Weibo login emulated when the sandbox is on, else off)"},
	{"LOGINHUB_WEIBO_SECRET", "", "Weibo app's App Secret"},
	{"LOGINHUB_WECHAT_WEB_APPID", "", "WeChat Open Platform website app's AppID, for wechat_web login (empty with LOGINHUB_WECHAT_WEB_SECRET = emulated when the sandbox is on, else off)"},
	{"LOGINHUB_WECHAT_WEB_SECRET", "", "WeChat website app's AppSecret"},
	{"LOGINHUB_QQ_BASE_URL", "", "QQ Connect's base URL (default https://graph.qq.com), e.g. an egress proxy"},
	{"LOGINHUB_WEIBO_BASE_URL", "", "Weibo's API base URL (default https://api.weibo.com)"},
	{"LOGINHUB_WECHAT_WEB_BASE_URL", "", "one base URL for WeChat website login's authorize page and API (default https://open.weixin.qq.com and https://api.weixin.qq.com)"},
	{"LOGINHUB_OIDC_UPSTREAMS", "", "OpenID Connect providers to log in with, by name (a-z 0-9 _ - .), comma-separated; each needs LOGINHUB_OIDC_<NAME>_ISSUER, _CLIENT_ID and _CLIENT_SECRET, and may set _SCOPES"},
	// Carrier one-click login (carriers.go).
	{"LOGINHUB_CARRIER_ROUTE", "", "carrier one-click login: direct (China Mobile's loginTokenValidate; Unicom and Telecom through Aliyun) or aliyun (Dypnsapi for all three); empty = direct when LOGINHUB_CMCC_APPID is set, else aliyun"},
	{"LOGINHUB_CMCC_APPID", "", "China Mobile one-click login app's appid (route direct)"},
	{"LOGINHUB_CMCC_APPKEY", "", "China Mobile app's appkey"},
	{"LOGINHUB_ALIYUN_ACCESS_KEY_ID", "", "Aliyun AccessKey ID for number authentication (Dypnsapi); with none of these carriers are emulated when the sandbox is on, else disabled"},
	{"LOGINHUB_ALIYUN_ACCESS_KEY_SECRET", "", "its AccessKey secret"},
	{"LOGINHUB_CMCC_BASE_URL", "", "China Mobile's API base (default https://www.cmpassport.com; sandbox: this hub)"},
	{"LOGINHUB_DYPNS_BASE_URL", "", "Aliyun Dypnsapi's endpoint (default https://dypnsapi.aliyuncs.com; sandbox: this hub)"},
	{"LOGINHUB_CARRIER_BREAKER_COOLDOWN", "10s", "after 5 failed calls in a row to one carrier, how long its logins answer 503 (fallback sms) at once before the carrier is tried again"},
	{"LOGINHUB_OIDC_CLIENTS", "", "path of a JSON file of the apps that log in through the hub as an OpenID Connect provider: [{\"client_id\",\"client_secret_hash\"?,\"redirect_uris\":[...],\"post_logout_redirect_uris\"?,\"public\":bool}]; empty = the hub is no OpenID Connect provider"},
	{"LOGINHUB_SIGNING_KEYS", "", "kid:base64 PKCS#8 P-256 key,...: the OpenID Connect provider's ES256 keys; the first signs, all are published in the JWKS (default: random per process, embedded store only)"},
	{"LOGINHUB_WECHAT_WATERMARK_MAX_AGE", "0", "reject decrypted data whose watermark is older; 0 = not checked"},
	{"LOGINHUB_WECHAT_BREAKER_COOLDOWN", "10s", "after 5 failed WeChat calls in a row, how long /v1/wx/login answers 503 at once before WeChat is probed again"},
	{"LOGINHUB_MAX_SOCKETS", "auto", "WebSockets per node before /v1/ws answers 503; auto = the open-file limit less 1024; 0 = no cap"},
	{"LOGINHUB_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"LOGINHUB_GEOIP_DB", "", "path of a MaxMind GeoIP2/GeoLite2 City .mmdb or an ip2region .xdb: a login's region is country/province/city; empty = the address's /16 (IPv4) or /32 (IPv6)"},
	{"LOGINHUB_RISK", "new_region", "when a password or wx.login login must be confirmed by an SMS code to the user's phone: new_region (its region and device both new), strict (either new) or off"},
	{"LOGINHUB_INTERNAL_ADDR", "", "if set, serve /metrics and Go's pprof profiles on this address, never on the public one (keep it on a private network or loopback)"},
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "LOGINHUB_")), "_", "-")
}

// loadConfig reads the environment, then flags, into a Config and
// validates it.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("loginhub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := map[string]*string{}
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		if secretSettings[s.env] {
			v = ""
		}
		values[s.env] = fs.String(flagName(s.env), v, s.usage+" ($"+s.env+")")
	}
	port := fs.String("port", getenv("PORT"), "listen port, as on Procfile platforms ($PORT)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage of loginhub (each flag also reads the environment variable in parentheses):")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "Go's own GOGC (the hub's default: %d) and GOMEMLIMIT (default: %d %% of a container memory limit) apply too.\n",
			gcpolicy.DefaultPercent, int(gcpolicy.LimitShare*100))
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range settings {
		if secretSettings[s.env] && *values[s.env] == "" {
			*values[s.env] = getenv(s.env)
		}
	}
	get := func(env string) string { return strings.TrimSpace(*values[env]) }

	var c Config
	var errs []error
	c.Addr = get("LOGINHUB_ADDR")
	if c.Addr == "" {
		c.Addr = ":8080"
		if *port != "" {
			c.Addr = ":" + *port
		}
	}
	c.PublicURL = strings.TrimRight(get("LOGINHUB_PUBLIC_URL"), "/")
	c.publicURLSet = c.PublicURL != ""
	c.RedisURL = get("LOGINHUB_REDIS_URL")
	var err error
	if k := get("LOGINHUB_TICKET_KEYS"); k != "" {
		c.Signer, c.publishedTicketKey, err = parseKeys(k, authcore.NewSigner)
		errs = append(errs, wrapSetting("LOGINHUB_TICKET_KEYS", err))
	}
	if k := get("LOGINHUB_DATA_KEY"); k != "" {
		c.Vault, c.publishedDataKey, err = parseKeys(k, authcore.NewVault)
		errs = append(errs, wrapSetting("LOGINHUB_DATA_KEY", err))
	}
	c.QRTTL, err = time.ParseDuration(get("LOGINHUB_QR_TTL"))
	errs = append(errs, wrapSetting("LOGINHUB_QR_TTL", err))
	c.IPBinding = authcore.IPBinding(get("LOGINHUB_IP_BINDING"))
	c.TrustedProxies, err = handlers.ParsePrefixes(get("LOGINHUB_TRUSTED_PROXIES"))
	errs = append(errs, wrapSetting("LOGINHUB_TRUSTED_PROXIES", err))
	for _, o := range strings.Split(get("LOGINHUB_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	c.TicketRate, err = strconv.Atoi(get("LOGINHUB_TICKET_RATE"))
	errs = append(errs, wrapSetting("LOGINHUB_TICKET_RATE", err))
	c.LoginRate, err = strconv.Atoi(get("LOGINHUB_LOGIN_RATE"))
	errs = append(errs, wrapSetting("LOGINHUB_LOGIN_RATE", err))
	c.SandboxSetting = get("LOGINHUB_SANDBOX")
	c.CallRate, err = strconv.Atoi(get("LOGINHUB_CALL_RATE"))
	errs = append(errs, wrapSetting("LOGINHUB_CALL_RATE", err))
	c.WeChatAppID, c.WeChatSecret = get("LOGINHUB_WECHAT_APPID"), get("LOGINHUB_WECHAT_SECRET")
	c.WeChatBaseURL = strings.TrimRight(get("LOGINHUB_WECHAT_BASE_URL"), "/")
	c.WatermarkMaxAge, err = parseDurationOrZero(get("LOGINHUB_WECHAT_WATERMARK_MAX_AGE"))
	errs = append(errs, wrapSetting("LOGINHUB_WECHAT_WATERMARK_MAX_AGE", err))
	c.WeChatBreakerCoolDown, err = time.ParseDuration(get("LOGINHUB_WECHAT_BREAKER_COOLDOWN"))
	errs = append(errs, wrapSetting("LOGINHUB_WECHAT_BREAKER_COOLDOWN", err))
	c.LogLevel = get("LOGINHUB_LOG_LEVEL")
	c.SMSProvider = get("LOGINHUB_SMS_PROVIDER")
	c.SMSAccessKeyID, c.SMSAccessKeySecret = get("LOGINHUB_SMS_ACCESS_KEY_ID"), get("LOGINHUB_SMS_ACCESS_KEY_SECRET")
	c.SMSSignName, c.SMSTemplate = get("LOGINHUB_SMS_SIGN_NAME"), get("LOGINHUB_SMS_TEMPLATE")
	c.SMSSdkAppID, c.SMSRegion = get("LOGINHUB_SMS_SDK_APP_ID"), get("LOGINHUB_SMS_REGION")
	c.SMSBaseURL = strings.TrimRight(get("LOGINHUB_SMS_BASE_URL"), "/")
	c.QQAppID, c.QQAppKey = get("LOGINHUB_QQ_APPID"), get("LOGINHUB_QQ_APPKEY")
	c.WeiboAppKey, c.WeiboSecret = get("LOGINHUB_WEIBO_APPKEY"), get("LOGINHUB_WEIBO_SECRET")
	c.WeChatWebAppID, c.WeChatWebSecret = get("LOGINHUB_WECHAT_WEB_APPID"), get("LOGINHUB_WECHAT_WEB_SECRET")
	c.QQBaseURL = strings.TrimRight(get("LOGINHUB_QQ_BASE_URL"), "/")
	c.WeiboBaseURL = strings.TrimRight(get("LOGINHUB_WEIBO_BASE_URL"), "/")
	c.WeChatWebBaseURL = strings.TrimRight(get("LOGINHUB_WECHAT_WEB_BASE_URL"), "/")
	// The list may come from a flag; each upstream's own variables are
	// named after it, so they come from the environment only.
	c.OIDCUpstreams, err = oidc.ParseUpstreams(func(k string) string {
		if k == "LOGINHUB_OIDC_UPSTREAMS" {
			return get(k)
		}
		return getenv(k)
	})
	errs = append(errs, err)
	for _, u := range c.OIDCUpstreams {
		switch u.Name {
		case authcore.ProviderQQ, authcore.ProviderWeibo, authcore.ProviderWeChatWeb:
			errs = append(errs, fmt.Errorf("LOGINHUB_OIDC_UPSTREAMS: %q is a built-in provider's name; call the upstream something else", u.Name))
		}
	}
	c.Carrier, err = loadCarrierConfig(get)
	errs = append(errs, err)
	if path := get("LOGINHUB_OIDC_CLIENTS"); path != "" {
		c.OIDCClients, err = oidcprovider.LoadClients(path)
		errs = append(errs, wrapSetting("LOGINHUB_OIDC_CLIENTS", err))
	}
	if k := get("LOGINHUB_SIGNING_KEYS"); k != "" {
		c.SigningKeys, err = oidcprovider.ParseSigningKeys(k)
		errs = append(errs, wrapSetting("LOGINHUB_SIGNING_KEYS", err))
	}
	c.InternalAddr = get("LOGINHUB_INTERNAL_ADDR")
	c.GeoIPDB = get("LOGINHUB_GEOIP_DB")
	c.Risk = authcore.RiskPolicy(get("LOGINHUB_RISK"))
	if getenv("LOGINHUB_DEBUG_ADDR") != "" {
		// Refused rather than ignored: a deployment that set it expects
		// pprof somewhere, and now /metrics moved there too.
		errs = append(errs, errors.New("LOGINHUB_DEBUG_ADDR is replaced by LOGINHUB_INTERNAL_ADDR, which serves /metrics and pprof: rename it"))
	}
	if ms := get("LOGINHUB_MAX_SOCKETS"); ms == "auto" {
		c.MaxSockets = -1
	} else {
		c.MaxSockets, err = strconv.Atoi(ms)
		if err == nil && c.MaxSockets < 0 {
			err = errors.New("must be auto, 0 or a positive number")
		}
		errs = append(errs, wrapSetting("LOGINHUB_MAX_SOCKETS", err))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// parseKeys parses a key list (authcore.ParseKeys), makes what uses it,
// and reports whether the list holds a published key.
func parseKeys[T any](s string, use func([]authcore.Key) (*T, error)) (*T, bool, error) {
	keys, err := authcore.ParseKeys(s)
	if err != nil {
		return nil, false, err
	}
	published := slices.ContainsFunc(keys, func(k authcore.Key) bool { return publishedKey(k.Secret) })
	t, err := use(keys)
	return t, published, err
}

func parseDurationOrZero(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func wrapSetting(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("LOGINHUB_ADDR %q: want host:port or :port", c.Addr))
	}
	if _, _, err := net.SplitHostPort(c.InternalAddr); c.InternalAddr != "" && err != nil {
		errs = append(errs, fmt.Errorf("LOGINHUB_INTERNAL_ADDR %q: want host:port or :port", c.InternalAddr))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("LOGINHUB_PUBLIC_URL %q: want an http(s) URL like https://login.example.com", c.PublicURL))
		}
	}
	if c.RedisURL != "" {
		scheme, _, _ := strings.Cut(c.RedisURL, "://")
		switch scheme {
		case "redis", "rediss", "redis+cluster", "rediss+cluster":
		default:
			errs = append(errs, errors.New("LOGINHUB_REDIS_URL: want redis://, rediss://, redis+cluster:// or rediss+cluster://"))
		}
		if c.Signer == nil {
			// Each node would sign with its own random key and reject the
			// tickets of every other node.
			errs = append(errs, errors.New("LOGINHUB_REDIS_URL is set but LOGINHUB_TICKET_KEYS is not: every node must share the ticket keys (e.g. LOGINHUB_TICKET_KEYS=k1:$(head -c32 /dev/urandom | base64))"))
		}
		if len(c.OIDCClients) > 0 && len(c.SigningKeys) == 0 {
			// Each node would sign with its own key, and apps would reject
			// the tokens of every node but the one whose JWKS they cached.
			errs = append(errs, errors.New("LOGINHUB_REDIS_URL and LOGINHUB_OIDC_CLIENTS are set but LOGINHUB_SIGNING_KEYS is not: every node must sign with the same keys (e.g. LOGINHUB_SIGNING_KEYS=s1:$(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | openssl pkcs8 -topk8 -nocrypt -outform DER | base64 -w0))"))
		}
		if c.Vault == nil {
			// Personal data sealed by one node must open on every other,
			// and after a restart.
			errs = append(errs, errors.New("LOGINHUB_REDIS_URL is set but LOGINHUB_DATA_KEY is not: every node must share the key that seals personal data (e.g. LOGINHUB_DATA_KEY=d1:$(head -c32 /dev/urandom | base64))"))
		}
	}
	if !c.LoopbackPublicURL() {
		const why = "holds a published development key (the Procfile's), accepted only with a loopback public URL: anyone can "
		if c.publishedTicketKey {
			errs = append(errs, errors.New("LOGINHUB_TICKET_KEYS "+why+"sign tickets with it; generate your own (e.g. LOGINHUB_TICKET_KEYS=k1:$(head -c32 /dev/urandom | base64))"))
		}
		if c.publishedDataKey {
			errs = append(errs, errors.New("LOGINHUB_DATA_KEY "+why+"open personal data sealed with it; generate your own (e.g. LOGINHUB_DATA_KEY=d1:$(head -c32 /dev/urandom | base64))"))
		}
	}
	if c.QRTTL < 2*time.Second || c.QRTTL > 30*time.Minute {
		errs = append(errs, fmt.Errorf("LOGINHUB_QR_TTL %s: want between 2s and 30m", c.QRTTL))
	}
	switch c.IPBinding {
	case authcore.IPStrict, authcore.IPSubnet, authcore.IPOff:
	default:
		errs = append(errs, fmt.Errorf("LOGINHUB_IP_BINDING %q: want strict, subnet or off", c.IPBinding))
	}
	switch c.Risk {
	case authcore.RiskNewRegion, authcore.RiskStrict, authcore.RiskOff:
	default:
		errs = append(errs, fmt.Errorf("LOGINHUB_RISK %q: want new_region, strict or off", c.Risk))
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("LOGINHUB_ALLOWED_ORIGINS: %q is not an origin like https://www.example.com", o))
		}
	}
	if c.TicketRate < 0 || c.LoginRate < 0 {
		errs = append(errs, errors.New("LOGINHUB_TICKET_RATE and LOGINHUB_LOGIN_RATE must not be negative"))
	}
	if c.CallRate < 0 {
		errs = append(errs, errors.New("LOGINHUB_CALL_RATE must not be negative"))
	}
	switch c.SandboxSetting {
	case "auto", "on", "off":
	default:
		errs = append(errs, fmt.Errorf("LOGINHUB_SANDBOX %q: want auto, on or off", c.SandboxSetting))
	}
	switch {
	case (c.WeChatAppID == "") != (c.WeChatSecret == ""):
		errs = append(errs, errors.New("LOGINHUB_WECHAT_APPID and LOGINHUB_WECHAT_SECRET go together: set both, or neither for the sandbox"))
	case c.WeChatAppID == "" && !c.Sandbox() && (c.SandboxSetting == "auto" || c.SandboxSetting == "off"):
		why := "LOGINHUB_SANDBOX is off"
		if c.SandboxSetting == "auto" {
			why = "the sandbox is off (LOGINHUB_SANDBOX=auto turns it on only with the embedded store and a loopback public URL)"
		}
		errs = append(errs, fmt.Errorf("LOGINHUB_WECHAT_APPID and LOGINHUB_WECHAT_SECRET are not set and %s: "+
			"set the mini-program's credentials, or LOGINHUB_SANDBOX=on for a staging cluster that emulates WeChat", why))
	}
	errs = append(errs, c.validateSMS()...)
	errs = append(errs, c.Carrier.validate()...)
	for _, pair := range []struct{ id, secret, idVar, secretVar string }{
		{c.QQAppID, c.QQAppKey, "LOGINHUB_QQ_APPID", "LOGINHUB_QQ_APPKEY"},
		{c.WeiboAppKey, c.WeiboSecret, "LOGINHUB_WEIBO_APPKEY", "LOGINHUB_WEIBO_SECRET"},
		{c.WeChatWebAppID, c.WeChatWebSecret, "LOGINHUB_WECHAT_WEB_APPID", "LOGINHUB_WECHAT_WEB_SECRET"},
	} {
		if (pair.id == "") != (pair.secret == "") {
			errs = append(errs, fmt.Errorf("%s and %s go together: set both, or neither (emulated when the sandbox is on)", pair.idVar, pair.secretVar))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOGINHUB_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.WatermarkMaxAge < 0 {
		errs = append(errs, errors.New("LOGINHUB_WECHAT_WATERMARK_MAX_AGE must not be negative"))
	}
	if c.WeChatBreakerCoolDown <= 0 {
		errs = append(errs, errors.New("LOGINHUB_WECHAT_BREAKER_COOLDOWN must be positive, e.g. 10s"))
	}
	return errors.Join(errs...)
}

// validateSMS checks the SMS provider's settings: each one a provider
// needs, none that it does not take, and none at all without a provider.
// Refused rather than ignored: a hub that quietly emulated SMS, or had
// none, would not send the codes its operator expects.
func (c Config) validateSMS() []error {
	type field struct{ env, v string }
	key := []field{
		{"LOGINHUB_SMS_ACCESS_KEY_ID", c.SMSAccessKeyID}, {"LOGINHUB_SMS_ACCESS_KEY_SECRET", c.SMSAccessKeySecret},
		{"LOGINHUB_SMS_SIGN_NAME", c.SMSSignName}, {"LOGINHUB_SMS_TEMPLATE", c.SMSTemplate},
	}
	tencentOnly := []field{{"LOGINHUB_SMS_SDK_APP_ID", c.SMSSdkAppID}, {"LOGINHUB_SMS_REGION", c.SMSRegion}}
	var required, refused []field
	switch c.SMSProvider {
	case "":
		refused = append(append(append(refused, key...), tencentOnly...), field{"LOGINHUB_SMS_BASE_URL", c.SMSBaseURL})
	case "aliyun":
		required, refused = key, tencentOnly
	case "tencent":
		required = append(key, tencentOnly[0])
	default:
		return []error{fmt.Errorf("LOGINHUB_SMS_PROVIDER %q: want aliyun or tencent, or empty "+
			"(SMS is then emulated when the sandbox is on, and disabled otherwise)", c.SMSProvider)}
	}
	var errs []error
	for _, f := range required {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required with LOGINHUB_SMS_PROVIDER=%s", f.env, c.SMSProvider))
		}
	}
	for _, f := range refused {
		if f.v == "" {
			continue
		}
		if c.SMSProvider == "" {
			errs = append(errs, fmt.Errorf("%s is set but LOGINHUB_SMS_PROVIDER is not: name the provider (aliyun or tencent), "+
				"or unset it for the emulated SMS", f.env))
		} else {
			errs = append(errs, fmt.Errorf("%s is for tencent, not LOGINHUB_SMS_PROVIDER=%s", f.env, c.SMSProvider))
		}
	}
	if c.SMSBaseURL != "" {
		if u, err := url.Parse(c.SMSBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("LOGINHUB_SMS_BASE_URL %q: want an http(s) URL without query", c.SMSBaseURL))
		}
	}
	return errs
}
