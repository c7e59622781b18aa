package wechat

// The mini-program APIs that take an access_token: the phone number
// (current API), checkSessionKey and resetusersessionkey.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/loginhub/loginhub/authcore"
)

// WeChat API paths of this file.
const (
	pathGetPhoneNumber  = "/wxa/business/getuserphonenumber"
	pathCheckSession    = "/wxa/checksession"
	pathResetSessionKey = "/wxa/resetusersessionkey"
)

// Client-visible messages of this file.
const (
	msgBadPhoneCode  = "invalid or already used phone code"
	msgStaleKey      = "the WeChat session has changed since this login (a later wx.login replaced its session_key); log in again"
	msgBadOpenID     = "malformed openid"
	msgNoSessionKey  = "missing session_key"
	maxOpenIDLength  = 128   // real openids are 28 characters
	errcodeBadSigKey = 87009 // invalid signature: the session_key is not the current one
)

// tokenRejected reports whether errcode says the access_token itself was
// refused: invalid or not the latest (40001), expired (42001), or invalid
// (40014). The remedy is one refresh and one retry.
func tokenRejected(errcode int) bool {
	return errcode == 40001 || errcode == 42001 || errcode == 40014
}

// statusOf is an answer type that embeds apiStatus.
type statusOf interface{ status() apiStatus }

func (s apiStatus) status() apiStatus { return s }

// callWithToken makes one API call with the app's access_token (build puts
// it in the request) and decodes the answer into a fresh T. If WeChat
// rejects the token, it invalidates it and retries once with the new one;
// a second rejection is KindUpstreamUnavailable. Any other answer,
// errcode included, is returned for the caller to map.
func callWithToken[T statusOf](ctx context.Context, c *Client, op string, attrs []slog.Attr,
	build func(ctx context.Context, token string) (*http.Request, error)) (T, error) {
	var zero T
	for try := 1; ; try++ {
		token, err := c.tokenMgr.Token(ctx)
		if err != nil {
			return zero, err
		}
		var out T
		if _, err := c.call(ctx, op, attrs, func(ctx context.Context) (*http.Request, error) {
			return build(ctx, token)
		}, &out); err != nil {
			return zero, err
		}
		st := out.status()
		if !tokenRejected(st.ErrCode) {
			return out, nil
		}
		if try == 2 {
			c.logAPIError(ctx, slog.LevelError, op, st,
				append(attrs, slog.String("problem", "WeChat rejected a freshly refreshed access_token")))
			return zero, authcore.Wrap(authcore.KindUpstreamUnavailable, st.cause(op), msgUnavailable)
		}
		c.logAPIError(ctx, slog.LevelInfo, op, st, append(attrs, slog.Bool("refreshing_token", true)))
		if err := c.tokenMgr.Invalidate(ctx, token); err != nil {
			return zero, err
		}
	}
}

// apiURL is base+path with the access_token and params in the query.
func (c *Client) apiURL(path, token string, params url.Values) string {
	q := url.Values{"access_token": {token}}
	for k, v := range params {
		q[k] = v
	}
	return c.base + path + "?" + q.Encode()
}

type phoneAnswer struct {
	apiStatus
	PhoneInfo *PhoneInfo `json:"phone_info"`
}

// GetPhoneNumber exchanges the code of the phone-number button
// (<button open-type="getPhoneNumber">, not a wx.login code) for the
// user's phone number (POST /wxa/business/getuserphonenumber). Concurrent
// calls with the same code share one upstream request, since a code works
// once.
//
// Errors, all *authcore.Error:
//   - KindInvalid: the code is empty, too long or malformed (checked before
//     calling WeChat).
//   - KindUnauthorized: the code is unknown, expired or used (40029, 40163).
//   - KindRateLimited, RetryAfter 1 minute: 45009, 45011.
//   - KindForbidden: 40226, as Code2Session.
//   - KindUpstreamUnavailable: WeChat is busy (-1, retried first),
//     unreachable or broken, the circuit breaker is open, the access_token
//     is refused even after a refresh (40001, 42001, 40014 are retried once
//     with a new token), or loginhub's credentials or permissions are wrong
//     (40013, 41001, 48001, ...).
func (c *Client) GetPhoneNumber(ctx context.Context, code string) (PhoneInfo, error) {
	if err := checkCodeOf("phone code", code); err != nil {
		return PhoneInfo{}, err
	}
	v, err := c.share(ctx, &c.phones, code, func(ctx context.Context) (any, error) {
		return c.getPhoneNumber(ctx, code)
	})
	if err != nil {
		return PhoneInfo{}, err
	}
	return v.(PhoneInfo), nil
}

func (c *Client) getPhoneNumber(ctx context.Context, code string) (PhoneInfo, error) {
	const op = "getuserphonenumber"
	body, err := json.Marshal(struct {
		Code string `json:"code"`
	}{code})
	if err != nil {
		return PhoneInfo{}, authcore.Wrap(authcore.KindInternal, err, "internal error")
	}
	attrs := []slog.Attr{slog.Any("code", redacted(code))}
	resp, err := callWithToken[phoneAnswer](ctx, c, op, attrs, func(ctx context.Context, token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL(pathGetPhoneNumber, token, nil), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return PhoneInfo{}, err
	}
	switch resp.ErrCode {
	case 0:
		p := resp.PhoneInfo
		if p == nil || (p.PhoneNumber == "" && p.PurePhoneNumber == "") || (p.Watermark.AppID != "" && p.Watermark.AppID != c.appID) {
			c.log.LogAttrs(ctx, slog.LevelError, "wechat: getuserphonenumber success without a phone number for this app",
				append(attrs, slog.String("op", op), slog.Bool("has_phone_info", p != nil))...)
			return PhoneInfo{}, authcore.Wrap(authcore.KindUpstreamUnavailable,
				errors.New("wechat getuserphonenumber: answer without a phone number for this app"), msgUnavailable)
		}
		return *p, nil
	case 40029, 40163:
		c.logAPIError(ctx, slog.LevelInfo, op, resp.apiStatus, attrs)
		return PhoneInfo{}, authcore.Wrap(authcore.KindUnauthorized, resp.cause(op), msgBadPhoneCode)
	}
	return PhoneInfo{}, c.commonError(ctx, op, resp.apiStatus, attrs)
}

// checkSessionArgs rejects an empty or malformed openid or an empty
// session_key before calling WeChat.
func checkSessionArgs(openid, sessionKey string) error {
	if openid == "" || len(openid) > maxOpenIDLength || !authcore.URLSafe(openid) {
		return authcore.Errorf(authcore.KindInvalid, msgBadOpenID)
	}
	if sessionKey == "" {
		return authcore.Errorf(authcore.KindInvalid, msgNoSessionKey)
	}
	return nil
}

// sessionKeyParams are the query parameters of checksession and
// resetusersessionkey besides the access_token.
func sessionKeyParams(openid, sessionKey string) url.Values {
	return url.Values{
		"openid":     {openid},
		"signature":  {SessionKeySignature(sessionKey)},
		"sig_method": {"hmac_sha256"},
	}
}

// CheckSessionKey asks WeChat whether sessionKey is still openid's
// current session_key (GET /wxa/checksession): a later wx.login replaces
// it, and data the phone encrypts after that cannot be decrypted with the
// old one. It reports false, with no error, when WeChat says the key is
// stale (87009).
//
// Errors, all *authcore.Error: KindInvalid for an empty or malformed openid
// or an empty key; KindRateLimited (45009, 45011); KindUpstreamUnavailable
// as GetPhoneNumber (access_token refused twice, breaker open, WeChat
// failing, unexpected errcodes such as 40003 for an openid of another app).
func (c *Client) CheckSessionKey(ctx context.Context, openid, sessionKey string) (bool, error) {
	if err := checkSessionArgs(openid, sessionKey); err != nil {
		return false, err
	}
	const op = "checksession"
	attrs := []slog.Attr{slog.String("openid", openid)}
	endpoint := func(token string) string {
		return c.apiURL(pathCheckSession, token, sessionKeyParams(openid, sessionKey))
	}
	resp, err := callWithToken[apiStatus](ctx, c, op, attrs, func(ctx context.Context, token string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, endpoint(token), nil)
	})
	if err != nil {
		return false, err
	}
	switch resp.ErrCode {
	case 0:
		return true, nil
	case errcodeBadSigKey:
		c.logAPIError(ctx, slog.LevelDebug, op, resp, attrs)
		return false, nil
	}
	return false, c.commonError(ctx, op, resp, attrs)
}

type resetAnswer struct {
	apiStatus
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

// ResetSessionKey asks WeChat for a new session_key for openid, proving
// that the caller holds its current one, sessionKey (GET
// /wxa/resetusersessionkey). The old key stops working. Concurrent calls
// for the same openid and key share one upstream request: the second
// would otherwise present a key the first just replaced.
//
// Errors, all *authcore.Error: KindUnauthorized when sessionKey is no
// longer the current one (87009: the user must log in again); the others
// as CheckSessionKey.
func (c *Client) ResetSessionKey(ctx context.Context, openid, sessionKey string) (string, error) {
	if err := checkSessionArgs(openid, sessionKey); err != nil {
		return "", err
	}
	params := sessionKeyParams(openid, sessionKey)
	v, err := c.share(ctx, &c.resets, openid+" "+params.Get("signature"), func(ctx context.Context) (any, error) {
		return c.resetSessionKey(ctx, openid, params)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (c *Client) resetSessionKey(ctx context.Context, openid string, params url.Values) (string, error) {
	const op = "resetusersessionkey"
	attrs := []slog.Attr{slog.String("openid", openid)}
	resp, err := callWithToken[resetAnswer](ctx, c, op, attrs, func(ctx context.Context, token string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.apiURL(pathResetSessionKey, token, params), nil)
	})
	if err != nil {
		return "", err
	}
	switch resp.ErrCode {
	case 0:
		if resp.SessionKey == "" || (resp.OpenID != "" && resp.OpenID != openid) {
			c.log.LogAttrs(ctx, slog.LevelError, "wechat: resetusersessionkey success without a session_key for this openid",
				append(attrs, slog.String("op", op), slog.Bool("openid_matches", resp.OpenID == openid))...)
			return "", authcore.Wrap(authcore.KindUpstreamUnavailable,
				errors.New("wechat resetusersessionkey: answer without a session_key for this openid"), msgUnavailable)
		}
		return resp.SessionKey, nil
	case errcodeBadSigKey:
		c.logAPIError(ctx, slog.LevelInfo, op, resp.apiStatus, attrs)
		return "", authcore.Wrap(authcore.KindUnauthorized, resp.cause(op), msgStaleKey)
	}
	return "", c.commonError(ctx, op, resp.apiStatus, attrs)
}
