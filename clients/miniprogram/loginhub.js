/*
 * loginhub.js: the WeChat mini-program client for loginhub (API v1).
 * Plain ES2017 and CommonJS, no dependencies and no build step: copy this
 * file into the mini-program (WeChat cannot require outside the project)
 * and require it.
 *
 *   // app.js
 *   const { createClient } = require("./lib/loginhub.js");
 *   App({
 *     hub: createClient({ wx, baseURL: "https://login.example.com" }),
 *     onLaunch() { this.hub.login().catch(() => {}); }, // silent: usually no wx.login at all
 *   });
 *
 *   // any page
 *   const hub = getApp().hub;
 *   const res = await hub.request({ url: "https://api.example.com/orders" }); // Bearer token added
 *   const scan = await hub.scan(query.q);           // → {id, state, requester: {ip, location, device, ...}}
 *   await hub.confirm(scan.id);                      // or hub.cancel(scan.id)
 *   await hub.phoneNumber(e.detail);                 // the getPhoneNumber button's event detail
 *
 * Silent login (what login(), request() and every helper do first):
 *  1. The stored session (wx storage, "loginhub.session"): its access token
 *     is used as is; the hub slides it 30 minutes from each use.
 *  2. When the hub refuses the access token (401), the refresh token (7 days,
 *     rotated at each use) gets a new session: POST /v1/session/refresh.
 *  3. When there is no refresh token, or the hub refuses it, wx.login gives
 *     a code and POST /v1/wx/login a new session.
 * However many calls need a session at once, ONE renewal runs and all of
 * them wait for it: one refresh (a refresh token is single use; reusing one
 * makes the hub revoke the whole session family) and at most one wx.login
 * code in flight (each wx.login may rotate the user's session_key).
 *
 * Errors are LoginHubError (err.error: the API code such as "conflict", or
 * "network", "wx_login_failed", "phone_denied"; err.status: HTTP status, 0
 * without a response), and two subclasses the app must handle:
 *  - StepUpRequiredError: risk control held the login (a new place and
 *    device). err.stepUp = {id, methods, phone_masked, region, expires_in}.
 *    Show where the code goes, then sendStepUpCode(err) and
 *    completeStepUp(err, code).
 *  - WeChatUnavailableError: /v1/wx/login answered 503 (WeChat is down, the
 *    hub's breaker is open). err.fallback = "sms": offer SMS login with
 *    sendLoginCode(phone) and smsLogin(phone, code). Sessions that exist
 *    keep working and refreshing meanwhile.
 *
 * device_id: made once, kept in wx storage ("loginhub.device_id") and sent
 * with every login, so the user's session list and login history can tell
 * this phone from their others, and risk control knows it next time.
 *
 * This file never logs: tokens, wx.login codes, SMS codes and phone numbers
 * must not end up in a console or a log collector.
 */
"use strict";

var SESSION_KEY = "loginhub.session";
var DEVICE_KEY = "loginhub.device_id";
var REFRESH_TTL_MS = 7 * 24 * 3600 * 1000; // the hub's refresh token lifetime
var REQUEST_TIMEOUT_MS = 15000;

/** An error from the hub or from the way to it. */
class LoginHubError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "LoginHubError";
    this.error = code; // API error code, or "network", "wx_login_failed", "phone_denied", "invalid_argument"
    this.status = status || 0; // HTTP status; 0 when there was no response
    this.retryAfterMs = 0; // from Retry-After, when the hub sent one
  }
}

/**
 * The hub held a login for an SMS code to the user's phone (risk control),
 * or refused an operation that needs a more recent login.
 */
class StepUpRequiredError extends LoginHubError {
  constructor(message, status, stepUp) {
    super("step_up_required", message, status);
    this.name = "StepUpRequiredError";
    // {id, methods: ["sms"], phone_masked, region, expires_in} for a held
    // login; {methods: [...]} alone for an operation that needs a fresher
    // login (login({force: true}) renews a WeChat session's).
    this.stepUp = stepUp || { methods: [] };
  }
}

/** WeChat login is unavailable: offer SMS login (sendLoginCode, smsLogin). */
class WeChatUnavailableError extends LoginHubError {
  constructor(message, status) {
    super("upstream_unavailable", message, status);
    this.name = "WeChatUnavailableError";
    this.fallback = "sms";
  }
}

function headerValue(headers, name) {
  if (!headers) return "";
  var want = name.toLowerCase();
  var keys = Object.keys(headers);
  for (var i = 0; i < keys.length; i++) {
    if (keys[i].toLowerCase() === want) return String(headers[keys[i]]);
  }
  return "";
}

function parseBody(data) {
  if (typeof data !== "string") return data;
  try {
    return JSON.parse(data);
  } catch (err) {
    return data;
  }
}

/** errorFrom turns a hub response of status >= 400 into a typed error. */
function errorFrom(res, wxLogin) {
  var body = parseBody(res.data) || {};
  var code = typeof body.error === "string" ? body.error : "http_" + res.statusCode;
  var message = typeof body.message === "string" ? body.message : "";
  var err;
  if (code === "step_up_required") {
    err = new StepUpRequiredError(message, res.statusCode, body.step_up);
  } else if (wxLogin && res.statusCode === 503) {
    err = new WeChatUnavailableError(message || "WeChat login is unavailable; log in with an SMS code", res.statusCode);
  } else {
    err = new LoginHubError(code, message, res.statusCode);
  }
  var after = parseInt(headerValue(res.header, "Retry-After"), 10);
  if (after > 0) err.retryAfterMs = after * 1000;
  return err;
}

// refused reports whether a response says the access token was not accepted
// (and a new one may help): 401, except a step-up, which a new token of the
// same kind does not satisfy.
function refused(res) {
  if (res.statusCode !== 401) return false;
  var body = parseBody(res.data);
  return !(body && body.error === "step_up_required");
}

// gone reports whether a refresh failure means the refresh token is dead
// (log in again) rather than the hub or the network failing (keep it).
function gone(err) {
  return err.status === 400 || err.status === 401 || err.status === 410;
}

function randomDeviceID() {
  // Not a secret, only a stable name for this install: 22 URL-safe
  // characters (132 bits), as the hub requires 16-64 of A-Z a-z 0-9 _ -.
  var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  var s = "";
  for (var i = 0; i < 22; i++) s += abc.charAt(Math.floor(Math.random() * 64));
  return s;
}

/**
 * ticketFromQR returns the signed ticket of a scanned QR code: from the
 * page's `q` query parameter (the QR's URL, URL-encoded, as WeChat passes
 * it for "扫普通链接二维码打开小程序"), from the URL itself (wx.scanCode's
 * result), or the ticket as is.
 */
function ticketFromQR(q) {
  var s = String(q == null ? "" : q).trim();
  if (s.indexOf("%") >= 0) {
    try {
      s = decodeURIComponent(s);
    } catch (err) {
      // not encoded after all
    }
  }
  var i = s.lastIndexOf("/s/");
  if (i >= 0) s = s.slice(i + 3);
  return s.split(/[?#]/)[0];
}

function idOf(challenge) {
  if (challenge && typeof challenge === "object") {
    if (challenge.stepUp) return challenge.stepUp.id;
    return challenge.id;
  }
  return challenge;
}

/**
 * The client. Make one per mini-program (in app.js) and share it: its
 * single renewal in flight only holds within one client.
 */
class LoginHubClient {
  /**
   * options:
   *   wx:        the mini-program's wx object (wx.request, wx.login, wx.getStorageSync, wx.setStorageSync)
   *   baseURL:   the hub, e.g. "https://login.example.com" (add it to the mini-program's request domains)
   *   timeoutMs: per request (default 15000)
   *   getLoginCode: optional () => Promise<code>, instead of wx.login (a sandbox hub's
   *              /sandbox/wechat/wx.login in WeChat DevTools, for instance)
   */
  constructor(options) {
    var o = options || {};
    if (!o.wx) throw new LoginHubError("invalid_argument", "createClient needs the wx object");
    if (!o.baseURL) throw new LoginHubError("invalid_argument", "createClient needs the hub's baseURL");
    this.wx = o.wx;
    this.baseURL = String(o.baseURL).replace(/\/+$/, "");
    this.timeoutMs = o.timeoutMs || REQUEST_TIMEOUT_MS;
    this.getLoginCode = o.getLoginCode || null;
    this._session = undefined; // undefined: not read from storage yet; null: none
    this._renewal = null; // the one renewal in flight
  }

  // --- storage ---------------------------------------------------------

  _get(key) {
    try {
      return this.wx.getStorageSync(key) || null;
    } catch (err) {
      return null;
    }
  }

  _set(key, value) {
    try {
      if (value == null) this.wx.removeStorageSync(key);
      else this.wx.setStorageSync(key, value);
    } catch (err) {
      // Storage full or unavailable: the session lasts as long as the app.
    }
  }

  _stored() {
    if (this._session === undefined) {
      var s = this._get(SESSION_KEY);
      this._session = s && typeof s === "object" && s.access_token ? s : null;
    }
    return this._session;
  }

  _keep(session) {
    var s = {
      access_token: session.access_token,
      refresh_token: session.refresh_token,
      refresh_expires_at: Date.now() + REFRESH_TTL_MS,
      user: session.user || null,
    };
    this._session = s;
    this._set(SESSION_KEY, s);
    return s;
  }

  _forget() {
    this._session = null;
    this._set(SESSION_KEY, null);
  }

  /** deviceId returns this install's device id, made once and kept in wx storage. */
  deviceId() {
    var id = this._get(DEVICE_KEY);
    if (typeof id === "string" && /^[A-Za-z0-9_-]{16,64}$/.test(id)) return id;
    if (!this._deviceID) {
      this._deviceID = randomDeviceID();
      this._set(DEVICE_KEY, this._deviceID);
    }
    return this._deviceID;
  }

  /** user returns the logged-in user as the hub last described it, or null. */
  user() {
    var s = this._stored();
    return s ? s.user : null;
  }

  // --- HTTP ------------------------------------------------------------

  _url(url) {
    return /^https?:\/\//i.test(url) ? url : this.baseURL + url;
  }

  /** _send is one wx.request; it resolves with {statusCode, data, header} and rejects only without a response. */
  _send(opts, token) {
    var self = this;
    var method = (opts.method || "GET").toUpperCase();
    var header = Object.assign({}, opts.header || {});
    if (token) header.Authorization = "Bearer " + token;
    if (opts.data !== undefined && !headerValue(header, "Content-Type")) header["Content-Type"] = "application/json";
    return new Promise(function (resolve, reject) {
      self.wx.request({
        url: self._url(opts.url),
        method: method,
        data: opts.data,
        header: header,
        timeout: opts.timeout || self.timeoutMs,
        success: function (res) {
          resolve({ statusCode: res.statusCode, data: parseBody(res.data), header: res.header || {} });
        },
        fail: function (err) {
          // errMsg is WeChat's ("request:fail timeout"): no tokens in it.
          reject(new LoginHubError("network", (err && err.errMsg) || "request failed", 0));
        },
      });
    });
  }

  /** _hub sends an unauthenticated call to the hub and resolves with the body of a 2xx. */
  _hub(method, path, body, wxLogin) {
    return this._send({ url: path, method: method, data: body }).then(function (res) {
      if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
      throw errorFrom(res, wxLogin);
    });
  }

  // --- silent login ----------------------------------------------------

  // _once runs make() unless a renewal is already running, in which case
  // the caller shares that one.
  _once(make) {
    var self = this;
    if (!this._renewal) {
      var done = function () {
        self._renewal = null;
      };
      this._renewal = make();
      this._renewal.then(done, done);
    }
    return this._renewal;
  }

  // _token resolves with an access token to use: the stored one, unless it
  // is `stale` (the hub just refused it), else a renewed one.
  _token(stale) {
    var s = this._stored();
    if (s && s.access_token && s.access_token !== stale) return Promise.resolve(s.access_token);
    var self = this;
    return this._once(function () {
      return self._renew();
    }).then(function (session) {
      return session.access_token;
    });
  }

  async _renew() {
    var s = this._stored();
    if (s && s.refresh_token && s.refresh_expires_at > Date.now()) {
      try {
        return this._keep(await this._hub("POST", "/v1/session/refresh", { refresh_token: s.refresh_token }));
      } catch (err) {
        if (!gone(err)) throw err; // the hub or the network failed: keep the refresh token
        this._forget();
      }
    } else if (s) {
      this._forget();
    }
    return this._wxLogin();
  }

  _code() {
    if (this.getLoginCode) return Promise.resolve(this.getLoginCode());
    var wx = this.wx;
    return new Promise(function (resolve, reject) {
      wx.login({
        success: function (res) {
          if (res && res.code) resolve(res.code);
          else reject(new LoginHubError("wx_login_failed", (res && res.errMsg) || "wx.login gave no code", 0));
        },
        fail: function (err) {
          reject(new LoginHubError("wx_login_failed", (err && err.errMsg) || "wx.login failed", 0));
        },
      });
    });
  }

  async _wxLogin() {
    var code = await this._code();
    return this._keep(await this._hub("POST", "/v1/wx/login", { code: code, device_id: this.deviceId() }, true));
  }

  /**
   * login makes sure there is a session and resolves with its user. It uses
   * the stored session if any, without a call; {force: true} always makes a
   * fresh wx.login (it renews the session's auth_time, which sensitive
   * operations require). Rejects with StepUpRequiredError,
   * WeChatUnavailableError or LoginHubError.
   */
  async login(options) {
    var self = this;
    if (options && options.force) {
      if (this._renewal) await this._renewal.catch(function () {});
      await this._once(function () {
        return self._wxLogin();
      });
    } else {
      await this._token();
    }
    return this.user();
  }

  /**
   * request is wx.request with the hub's access token: it resolves with
   * {statusCode, data, header} whatever the status, like wx.request, after
   * at most one silent re-login and retry when the answer is 401 (the
   * token refused). `url`: absolute, or a path on the hub. Only send the
   * token to your own servers. Rejects when there was no response (a
   * LoginHubError "network") or when the silent login failed (its error).
   */
  async request(opts) {
    var token = await this._token();
    var res = await this._send(opts, token);
    if (!refused(res)) return res;
    token = await this._token(token);
    return this._send(opts, token);
  }

  /**
   * api calls the hub with the access token (and one silent re-login and
   * retry on 401) and resolves with the body of a 2xx; other statuses
   * reject with a LoginHubError (StepUpRequiredError for step_up_required).
   */
  async api(method, path, body) {
    var res = await this.request({ url: path, method: method, data: body });
    if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
    throw errorFrom(res, false);
  }

  /** me resolves with GET /v1/me: {user, session: {amr, auth_time, ...}}. */
  me() {
    return this.api("GET", "/v1/me");
  }

  /** logout revokes this session on the hub and forgets it here (the device id stays). */
  async logout() {
    var s = this._stored();
    this._forget();
    if (!s) return;
    var res = await this._send({ url: "/v1/session/logout", method: "POST", data: {} }, s.access_token);
    if (res.statusCode >= 300 && res.statusCode !== 401) throw errorFrom(res, false);
  }

  // --- phone number -----------------------------------------------------

  /**
   * phoneNumber verifies the user's number through WeChat and links it to
   * the user: pass the getPhoneNumber button's event detail (e.detail). It
   * sends the button's code, or the legacy {encryptedData, iv} payload
   * (which the hub decrypts with the session_key of the last wx.login, so
   * call it before any new wx.login). Resolves with
   * {phone_masked, country_code, verified}; rejects with "phone_denied"
   * when the user declined, "conflict" when the number is another user's.
   */
  phoneNumber(detail) {
    var d = detail || {};
    if (d.code) return this.api("POST", "/v1/wx/phone", { code: d.code });
    if (d.encryptedData && d.iv) return this.api("POST", "/v1/wx/phone", { encrypted_data: d.encryptedData, iv: d.iv });
    return Promise.reject(new LoginHubError("phone_denied", d.errMsg || "no phone number was given", 0));
  }

  // --- scan and confirm ---------------------------------------------------

  /**
   * scan claims the desktop's ticket for this user and resolves with
   * {id, state, version, expires_at, requester: {ip, location, device,
   * user_agent, created_at}}: show the requester and let the user confirm
   * or cancel. `q`: the page's q parameter, the QR's URL, or the ticket.
   */
  scan(q) {
    var ticket = ticketFromQR(q);
    if (!ticket) return Promise.reject(new LoginHubError("invalid_argument", "no ticket in the scanned code", 0));
    return this.api("POST", "/v1/qr/scan", { ticket: ticket });
  }

  /** confirm logs the desktop in as this user: resolves with {id, state: "confirmed", version}. */
  confirm(id) {
    return this.api("POST", "/v1/qr/tickets/" + encodeURIComponent(id) + "/confirm", {});
  }

  /** cancel refuses the desktop's login: resolves with {id, state: "cancelled", version}. */
  cancel(id) {
    return this.api("POST", "/v1/qr/tickets/" + encodeURIComponent(id) + "/cancel", {});
  }

  // --- step-up (risk control) ----------------------------------------------

  /**
   * sendStepUpCode sends the SMS code of a held login to the user's own
   * phone (err.stepUp.phone_masked). `challenge`: the StepUpRequiredError,
   * its stepUp, or its id. Resolves with {expires_in, resend_after}.
   */
  sendStepUpCode(challenge) {
    return this._hub("POST", "/v1/sms/code", { purpose: "step_up", step_up_id: idOf(challenge) });
  }

  /** completeStepUp finishes a held login with the SMS code; resolves with the user. */
  async completeStepUp(challenge, code) {
    this._keep(await this._hub("POST", "/v1/step-up", { id: idOf(challenge), code: String(code) }));
    return this.user();
  }

  // --- SMS login (WeChat down, or no WeChat) -------------------------------

  /** sendLoginCode sends a login code to `phone` (E.164, or 11 mainland digits); resolves with {expires_in, resend_after}. */
  sendLoginCode(phone) {
    return this._hub("POST", "/v1/sms/code", { phone: String(phone), purpose: "login" });
  }

  /** smsLogin logs in with the code; resolves with the user (is_new on a first login). */
  async smsLogin(phone, code) {
    var body = { phone: String(phone), code: String(code), device_id: this.deviceId() };
    this._keep(await this._hub("POST", "/v1/sms/login", body));
    return this.user();
  }
}

/** createClient returns a LoginHubClient; see LoginHubClient's constructor for the options. */
function createClient(options) {
  return new LoginHubClient(options);
}

module.exports = {
  createClient: createClient,
  LoginHubClient: LoginHubClient,
  LoginHubError: LoginHubError,
  StepUpRequiredError: StepUpRequiredError,
  WeChatUnavailableError: WeChatUnavailableError,
  ticketFromQR: ticketFromQR,
};
