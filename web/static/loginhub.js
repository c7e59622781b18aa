/*
 * loginhub.js: the browser client for loginhub QR scan login (API v1).
 * No dependencies and no build step: include it and call LoginHub.start.
 * Front-end builds import it instead (package.json beside this file; ESM
 * through loginhub.mjs, types in loginhub.d.ts):
 *   import { start, LoginHubError } from "@loginhub/desktop";
 *
 *   <img id="qr" alt="QR code">
 *   <p id="status"></p>
 *   <script src="/loginhub.js"></script>
 *   <script>
 *     const login = LoginHub.start({
 *       baseURL: "",        // the hub, e.g. "https://login.example.com"; default: this page's origin
 *       onQR(q) {           // a QR code to show: {id, ticket, qr_url, png, svg, expires_at}
 *         document.getElementById("qr").src = q.png;
 *       },
 *       onState(s) {        // {id, state, version, expires_at, scanner?: {nickname, avatar_url}}
 *         document.getElementById("status").textContent = s.state;
 *       },
 *       onLogin(session) {  // {access_token, refresh_token, token_type, expires_in, user}
 *         // Hand the session to your app. Keep tokens out of logs and URLs.
 *       },
 *       onError(e) {        // a LoginHub.Error: e.error (API code or "network"),
 *                           // e.status (HTTP status, 0 if none), e.fatal (true: the login stopped)
 *       },
 *       usePolling: false,  // true: long-poll only, never WebSocket
 *       requireDPoP: false, // true: fail instead of redeeming without a DPoP key
 *     });
 *     // login.refresh() replaces the QR code; login.stop() ends everything.
 *     // login.withProvider("qq") (from a click) logs in with QQ, Weibo
 *     // ("weibo"), WeChat's website login ("wechat_web") or an OpenID
 *     // Connect provider (its name) instead of a scan.
 *   </script>
 *
 * What happens:
 *  1. An ECDSA P-256 key is generated with WebCrypto, non-extractable: the
 *     private key never leaves this page. Its RFC 7638 thumbprint is sent as
 *     dpop_jkt when the ticket is created, so only this page can redeem it.
 *  2. The ticket's state is watched over WebSocket (/v1/ws). On a dropped
 *     socket it reconnects with exponential backoff and jitter and resumes
 *     with `since` = the last version seen, so no state is missed. After two
 *     consecutive failed connects it falls back to long-polling for the rest
 *     of this login.
 *  3. On "confirmed" the ticket is redeemed with the watch secret and a DPoP
 *     proof whose htu is the hub's public URL (the part of qr_url before
 *     "/s/") + the redeem path, and the browser's device_id (made once,
 *     kept in localStorage); onLogin receives the session and everything
 *     stops.
 *  4. On "expired" or "cancelled" a fresh ticket and QR code follow by
 *     themselves.
 *
 *  5. withProvider(name, {redirect?, returnTo?}) asks the hub for the
 *     provider's authorize URL for the current ticket and opens it in a
 *     popup. The provider's callback confirms the ticket, which this page
 *     is watching: onState sees "confirmed" and onLogin the session, as
 *     after a scan. Where popups are blocked (or with redirect: true) the
 *     page itself goes to the provider and comes back to returnTo (default:
 *     this page), which must call LoginHub.start again: it finds the
 *     ticket and its DPoP key kept for this tab and finishes the login.
 *
 * Callbacks run synchronously; an exception thrown by one is reported to the
 * browser (window.reportError) and does not break the login. They may call
 * login.stop() or login.refresh().
 *
 * WebCrypto needs a secure context (https, or http://localhost). Elsewhere
 * the ticket is created without dpop_jkt and redeemed with the watch secret
 * alone, unless requireDPoP is set.
 *
 * This file never logs: the watch secret and the tokens must not end up in a
 * console or a log collector.
 */
(function (root, factory) {
  // UMD without AMD (an anonymous define() would break pages that load
  // RequireJS beside a plain <script src>): CommonJS (require, and bundlers,
  // which also reach this file through loginhub.mjs) gets module.exports;
  // anything else, a <script src="/loginhub.js"> or this file imported as a
  // browser module by loginhub.mjs, gets the global LoginHub.
  var LoginHub = factory(root);
  if (typeof module === "object" && module && typeof module.exports === "object") module.exports = LoginHub;
  else root.LoginHub = LoginHub;
})(typeof window !== "undefined" ? window : globalThis, function (global) {
  "use strict";

  // Tuning. Every wait is bounded; every timer is owned by one login and
  // cleared by stop().
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_CAP_MS = 10000;
  var WS_FAILURES_BEFORE_POLLING = 2; // consecutive connects that never opened
  var WS_CONNECT_TIMEOUT_MS = 8000;
  var WS_STABLE_MS = 5000; // a socket open this long resets the backoff
  var POLL_WAIT_S = 25; // the hub answers within 30 s at most
  var POLL_MIN_INTERVAL_MS = 1000; // if a hub answers at once with nothing new
  var REQUEST_TIMEOUT_MS = 15000;
  var EXPIRY_GRACE_MS = 1500; // after ttl, before asking the hub whether it expired
  var EXPIRY_RECHECK_MS = 5000;
  var REDEEM_ATTEMPTS = 3;

  // HTTP statuses of the API's error codes, for errors that arrive over the
  // WebSocket without one.
  var STATUS_OF = {
    invalid_request: 400, unauthorized: 401, forbidden: 403, not_found: 404,
    conflict: 409, expired: 410, rate_limited: 429, internal: 500,
    upstream_unavailable: 503
  };

  /** An error reported to onError. */
  class LoginHubError extends Error {
    constructor(code, message, status) {
      super(message || code);
      this.name = "LoginHubError";
      this.error = code; // API error code ("expired", ...), or "network", "dpop_unavailable"
      this.status = status || 0; // HTTP status; 0 when there was no response
      this.fatal = false; // true when the login stopped because of it
      this.retryAfterMs = 0; // from Retry-After, when the hub sent one and it was readable
    }
  }

  // Thrown by requests aborted on purpose (stop, a newer ticket); never reported.
  var ABORTED = new Error("aborted");

  function backoff(attempt) {
    // "Equal jitter": half fixed, half random, so a crowd of clients that
    // lost the same node does not come back in lockstep.
    var ceil = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, Math.min(attempt, 10)));
    return ceil / 2 + Math.random() * (ceil / 2);
  }

  function retryable(e) {
    return e.status === 0 || e.status === 429 || e.status >= 500;
  }

  function utf8(s) {
    return new TextEncoder().encode(s);
  }

  function b64url(buf) {
    var bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomID() {
    var b = new Uint8Array(16);
    global.crypto.getRandomValues(b); // available outside secure contexts too
    return b64url(b);
  }

  // deviceID returns this browser's device id: 16 random bytes, base64url
  // (22 characters), made once and kept in localStorage, so that the
  // user's sessions list and login history can tell this browser from
  // their others. Where localStorage is unavailable (blocked, sandboxed
  // frames) it lasts as long as the page.
  var DEVICE_KEY = "loginhub.device_id";
  var pageDeviceID;
  function deviceID() {
    var id;
    try {
      id = global.localStorage.getItem(DEVICE_KEY);
    } catch (err) {
      id = null;
    }
    if (id && /^[A-Za-z0-9_-]{16,64}$/.test(id)) return id;
    if (pageDeviceID) return pageDeviceID;
    id = randomID();
    try {
      global.localStorage.setItem(DEVICE_KEY, id);
    } catch (err) {
      pageDeviceID = id;
    }
    return id;
  }

  // publicBase returns the hub's public base URL from a qr_url, or "".
  function publicBase(qrURL) {
    var i = typeof qrURL === "string" ? qrURL.lastIndexOf("/s/") : -1;
    if (i < 0) return "";
    var base = qrURL.slice(0, i);
    return /^https?:\/\/[^\/?#]+(\/[^?#]*)?$/i.test(base) ? base : "";
  }

  function report(err) {
    if (typeof global.reportError === "function") global.reportError(err);
    else setTimeout(function () { throw err; }, 0);
  }

  /**
   * Generates the DPoP key. Resolves to null when WebCrypto is unavailable
   * (not a secure context).
   */
  async function makeDPoPKey() {
    var subtle = global.crypto && global.crypto.subtle;
    if (!subtle) return null;
    var pair = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    // Public keys are always exportable, even from a non-extractable pair.
    var full = await subtle.exportKey("jwk", pair.publicKey);
    var jwk = { kty: "EC", crv: "P-256", x: full.x, y: full.y };
    // RFC 7638: the required members in lexicographic order, no whitespace.
    var canonical = '{"crv":"P-256","kty":"EC","x":"' + jwk.x + '","y":"' + jwk.y + '"}';
    var jkt = b64url(await subtle.digest("SHA-256", utf8(canonical)));
    return { privateKey: pair.privateKey, jwk: jwk, jkt: jkt };
  }

  /**
   * Builds an RFC 9449 proof. ECDSA signatures from WebCrypto are raw r||s,
   * which is exactly the JWS ES256 format (RFC 7518 3.4), no DER.
   */
  async function dpopProof(key, method, htu, nowMs) {
    var header = { typ: "dpop+jwt", alg: "ES256", jwk: key.jwk };
    var payload = {
      jti: randomID(),
      htm: method,
      htu: htu.split(/[?#]/)[0],
      iat: Math.floor(nowMs / 1000)
    };
    var input = b64url(utf8(JSON.stringify(header))) + "." + b64url(utf8(JSON.stringify(payload)));
    var sig = await global.crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, utf8(input));
    return input + "." + b64url(sig);
  }

  // --- a provider login that leaves the page ------------------------------
  //
  // Where a popup is blocked, withProvider sends the page itself to the
  // provider; the provider's callback sends it back to return_to, where
  // start() picks the ticket up again and redeems it. What that needs
  // crosses the navigation in this tab only: the ticket (its watch secret
  // included: it lives as long as the ticket, 2 minutes by default) in
  // sessionStorage, and the DPoP key in IndexedDB, which keeps a CryptoKey
  // as it is: the non-extractable private key is never exported.

  var RESUME_KEY = "loginhub.resume:";
  var KEY_DB = "loginhub", KEY_STORE = "keys";

  function keyDB(mode, fn) {
    return new Promise(function (resolve, reject) {
      var open = global.indexedDB.open(KEY_DB, 1);
      open.onupgradeneeded = function () { open.result.createObjectStore(KEY_STORE); };
      open.onerror = function () { reject(open.error); };
      open.onsuccess = function () {
        var db = open.result;
        var tx = db.transaction(KEY_STORE, mode);
        var req = fn(tx.objectStore(KEY_STORE));
        tx.oncomplete = function () { db.close(); resolve(req.result); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      };
    });
  }

  // saveResume keeps what a page needs to finish the login after coming
  // back; it resolves to false when this browser cannot keep it.
  async function saveResume(base, t, key, offsetMs) {
    try {
      if (key) await keyDB("readwrite", function (st) { return st.put(key, RESUME_KEY + base); });
      global.sessionStorage.setItem(RESUME_KEY + base, JSON.stringify({ ticket: t, dpop: !!key, offset: offsetMs }));
      return true;
    } catch (err) {
      return false;
    }
  }

  // takeResume returns and forgets the login saved for this hub, or null.
  async function takeResume(base) {
    var saved;
    try {
      saved = JSON.parse(global.sessionStorage.getItem(RESUME_KEY + base) || "null");
      global.sessionStorage.removeItem(RESUME_KEY + base);
    } catch (err) {
      return null;
    }
    if (!saved || !saved.ticket || !(Date.parse(saved.ticket.expires_at) > Date.now() + (saved.offset || 0))) return null;
    if (saved.dpop) {
      try {
        saved.key = await keyDB("readwrite", function (st) {
          var req = st.get(RESUME_KEY + base);
          st.delete(RESUME_KEY + base);
          return req;
        });
      } catch (err) {
        return null;
      }
      if (!saved.key) return null;
    }
    return saved;
  }

  /** Starts a login; see the comment at the top of this file. */
  function start(options) {
    var o = Object.assign({}, options || {});
    var here = global.location ? global.location.href : undefined;
    var given = String(o.baseURL || "").replace(/\/+$/, "");
    // prefix is put before API paths (relative when same-origin); absBase is
    // for where a relative URL does not do: the WebSocket URL, and the DPoP
    // htu when qr_url does not name the hub's public URL.
    var prefix = given;
    var absBase = given ? new URL(given, here).href.replace(/\/+$/, "") : global.location.origin;
    var wsURL = absBase.replace(/^http/, "ws") + "/v1/ws";

    var stopped = false;
    var timers = new Set();
    var requests = new Set(); // AbortControllers of requests in flight
    var ticketRequests = new Set(); // the subset that belongs to the current ticket

    var dpop = null; // {privateKey, jwk, jkt}, or null without WebCrypto
    var clockOffsetMs = 0; // hub clock minus ours, so a wrong local clock does not spoil iat

    var gen = 0; // bumped per ticket; async work for an older ticket sees the change and quits
    var ticket = null; // the create response: holds watch_secret, never log it
    var htuBase = absBase; // where the hub says it lives; see begin
    var version = 0; // last version seen of ticket
    var settled = false; // confirmed or terminal: nothing more to watch
    var redeeming = false;
    var creating = false;
    var expiryTimer = 0;
    var watchAttempt = 0;
    var pollGen = -1; // the ticket generation a poll loop runs for

    var polling = !!o.usePolling;
    var ws = null;
    var wsTimer = 0; // pending reconnect
    var wsFailures = 0;
    var wsAttempt = 0;

    // --- plumbing ---------------------------------------------------------

    function later(ms, fn) {
      var id = setTimeout(function () {
        timers.delete(id);
        if (!stopped) fn();
      }, ms);
      timers.add(id);
      return id;
    }

    function cancel(id) {
      if (id) {
        clearTimeout(id);
        timers.delete(id);
      }
      return 0;
    }

    // Never resolves once stopped: the waiting async function is simply dropped.
    function sleep(ms) {
      return new Promise(function (resolve) { later(ms, resolve); });
    }

    function emit(name, arg) {
      var fn = o[name];
      if (typeof fn !== "function") return;
      try {
        fn(arg);
      } catch (err) {
        report(err);
      }
    }

    function emitError(e) {
      if (!stopped) emit("onError", e);
    }

    function fatal(e) {
      if (stopped) return;
      if (!(e instanceof LoginHubError)) e = new LoginHubError("internal", String(e && e.message || e), 0);
      e.fatal = true;
      emit("onError", e);
      stop();
    }

    async function request(method, path, opt) {
      var ac = new AbortController();
      var timedOut = false;
      var timer = later(opt.timeoutMs || REQUEST_TIMEOUT_MS, function () {
        timedOut = true;
        ac.abort();
      });
      requests.add(ac);
      if (opt.ticketScoped) ticketRequests.add(ac);
      var headers = { Accept: "application/json" };
      if (opt.body !== undefined) headers["Content-Type"] = "application/json";
      if (opt.secret) headers.Authorization = "Bearer " + opt.secret;
      if (opt.proof) headers.DPoP = opt.proof;
      var res, data;
      try {
        res = await fetch(prefix + path, {
          method: method,
          headers: headers,
          body: opt.body === undefined ? undefined : JSON.stringify(opt.body),
          signal: ac.signal,
          cache: "no-store"
        });
        data = await res.json().catch(function () { return null; });
      } catch (err) {
        if (!timedOut && (stopped || ac.signal.aborted)) throw ABORTED;
        throw new LoginHubError("network", timedOut ? "request timed out" : "network error", 0);
      } finally {
        cancel(timer);
        requests.delete(ac);
        ticketRequests.delete(ac);
      }
      if (stopped) throw ABORTED;
      if (!res.ok) {
        var code = data && typeof data.error === "string" ? data.error : "http_" + res.status;
        var msg = data && typeof data.message === "string" ? data.message : "HTTP " + res.status;
        var e = new LoginHubError(code, msg, res.status);
        // Readable only same-origin or when the hub exposes it.
        var ra = Number(res.headers.get("Retry-After"));
        if (ra > 0) e.retryAfterMs = Math.min(ra * 1000, 60000);
        throw e;
      }
      return data;
    }

    function ticketPath(id) {
      return "/v1/qr/tickets/" + encodeURIComponent(id);
    }

    // --- tickets ----------------------------------------------------------

    // Forgets the current ticket: its timers, requests and watch.
    function endTicket() {
      gen++;
      expiryTimer = cancel(expiryTimer);
      ticketRequests.forEach(function (ac) { ac.abort(); });
      ticketRequests.clear();
      if (ticket && ws && ws.readyState === 1) wsSend({ op: "unwatch", id: ticket.id });
      ticket = null;
      version = 0;
      settled = false;
      redeeming = false;
      watchAttempt = 0;
    }

    async function newTicket() {
      if (creating || stopped) return;
      creating = true;
      endTicket();
      var g = gen;
      try {
        for (var attempt = 0; ; attempt++) {
          try {
            var t = await request("POST", "/v1/qr/tickets", { body: dpop ? { dpop_jkt: dpop.jkt } : {} });
            if (g === gen) begin(t);
            return;
          } catch (e) {
            if (e === ABORTED || stopped) return;
            if (!retryable(e)) {
              fatal(e);
              return;
            }
            emitError(e);
            await sleep(e.retryAfterMs || backoff(attempt));
          }
        }
      } finally {
        creating = false;
      }
    }

    // begin shows and watches the ticket t, just created, or, with
    // resumedOffsetMs, created before this page went to a provider and
    // came back (withProvider's redirect).
    function begin(t, resumedOffsetMs) {
      var g = gen;
      ticket = t;
      version = Number(t.version) || 0;
      var ttlMs = Number(t.ttl_seconds) * 1000;
      var exp = Date.parse(t.expires_at);
      if (resumedOffsetMs !== undefined) {
        // expires_at - ttl was the hub's clock at creation, not now: keep
        // the offset measured then (else every second spent at the
        // provider would age the DPoP proof's iat, refused past a minute),
        // and wait for what is left of the ttl.
        clockOffsetMs = resumedOffsetMs;
        ttlMs = isFinite(exp) ? exp - (Date.now() + clockOffsetMs) : 0;
      } else if (ttlMs > 0 && isFinite(exp)) {
        // expires_at - ttl is the hub's clock at creation.
        clockOffsetMs = exp - ttlMs - Date.now();
      } else if (isFinite(exp)) {
        ttlMs = exp - Date.now();
      }
      // The hub checks a DPoP htu against its public URL, which qr_url
      // (<public url>/s/<ticket>) reveals. Using it keeps redeem working when
      // this page reaches the hub under another name (localhost vs
      // 127.0.0.1, an internal address behind a proxy).
      htuBase = publicBase(t.qr_url) || absBase;
      var p = prefix + ticketPath(t.id);
      emit("onQR", {
        id: t.id,
        ticket: t.ticket,
        qr_url: t.qr_url,
        png: p + "/qr.png",
        svg: p + "/qr.svg",
        expires_at: t.expires_at
      });
      if (stopped || g !== gen) return;
      emit("onState", { id: t.id, state: t.state || "pending", version: version, expires_at: t.expires_at });
      if (stopped || g !== gen) return;
      // The hub may notice expiry only when asked, so ask shortly after the
      // ttl (measured on our clock, which need not agree with the hub's).
      expiryTimer = later(Math.max(ttlMs || 0, 1000) + EXPIRY_GRACE_MS, function () { checkExpiry(g); });
      watch();
    }

    async function checkExpiry(g) {
      expiryTimer = 0;
      if (g !== gen || settled) return;
      var id = ticket.id;
      try {
        var s = await request("GET", ticketPath(id) + "?since=" + version + "&wait=0", {
          secret: ticket.watch_secret,
          ticketScoped: true
        });
        onState(s, g);
      } catch (e) {
        if (e === ABORTED || stopped || g !== gen) return;
        if (!retryable(e)) {
          // Gone (410, 404) or refused: past its ttl the ticket is of no
          // use anyway, and a new one is bound afresh.
          newTicket();
          return;
        }
      }
      // Not expired yet by the hub's clock, or the hub was unreachable.
      if (g === gen && !settled && !stopped) {
        expiryTimer = later(EXPIRY_RECHECK_MS, function () { checkExpiry(g); });
      }
    }

    // Handles a state object from the socket or a poll. Returns whether it
    // was new.
    function onState(m, g) {
      if (!ticket || g !== gen || !m || m.id !== ticket.id) return false;
      var v = Number(m.version);
      if (!(v > version)) return false; // a duplicate or stale version
      version = v;
      watchAttempt = 0;
      var s = { id: m.id, state: m.state, version: v, expires_at: m.expires_at };
      if (m.scanner) s.scanner = m.scanner;
      emit("onState", s);
      if (stopped || g !== gen) return true;
      switch (m.state) {
        case "confirmed":
          settle();
          redeem(g);
          break;
        case "expired":
        case "cancelled":
          settle();
          newTicket();
          break;
        case "redeemed":
          settle();
          if (!redeeming) {
            // Someone else holding the watch secret redeemed it: not us.
            emitError(new LoginHubError("expired", "the ticket was redeemed elsewhere", 410));
            newTicket();
          }
          break;
      }
      return true;
    }

    function settle() {
      settled = true;
      expiryTimer = cancel(expiryTimer);
      ticketRequests.forEach(function (ac) { ac.abort(); });
      ticketRequests.clear();
      if (ticket && ws && ws.readyState === 1) wsSend({ op: "unwatch", id: ticket.id });
    }

    async function redeem(g) {
      redeeming = true;
      var id = ticket.id;
      var secret = ticket.watch_secret;
      var path = ticketPath(id) + "/redeem";
      for (var attempt = 0; ; attempt++) {
        var session;
        try {
          var proof;
          if (dpop) {
            try {
              proof = await dpopProof(dpop, "POST", htuBase + path, Date.now() + clockOffsetMs);
            } catch (err) {
              fatal(new LoginHubError("dpop_unavailable", "could not sign the DPoP proof", 0));
              return;
            }
          }
          session = await request("POST", path, { secret: secret, proof: proof, body: { device_id: deviceID() } });
        } catch (e) {
          if (e === ABORTED || stopped) return;
          // A rejected redeem does not consume the ticket, so a transient
          // failure may be retried (with a fresh proof: each jti is single use).
          if ((retryable(e) || e.status === 409) && attempt + 1 < REDEEM_ATTEMPTS) {
            await sleep(e.retryAfterMs || backoff(attempt));
            continue;
          }
          if (e.status === 400 || e.status === 401 || e.status === 403) {
            // Our secret, proof or address was refused: a new ticket would
            // fail the same way.
            fatal(e);
            return;
          }
          // Redeemed or expired meanwhile, or the hub stayed unavailable:
          // the user has to scan again.
          emitError(e);
          if (g === gen) newTicket();
          return;
        }
        emit("onLogin", session);
        stop();
        return;
      }
    }

    // --- watching ---------------------------------------------------------

    function watch() {
      if (!ticket || settled || stopped) return;
      if (polling) {
        poll(gen);
      } else if (ws && ws.readyState === 1) {
        sendWatch();
      } else if (!ws && !wsTimer) {
        connect();
      } // else: connecting, or a reconnect is scheduled; onopen sends the watch
    }

    function sendWatch() {
      if (ticket && !settled) {
        wsSend({ op: "watch", id: ticket.id, secret: ticket.watch_secret, since: version });
      }
    }

    function wsSend(msg) {
      try {
        ws.send(JSON.stringify(msg));
      } catch (err) {
        // The socket is closing; onclose reconnects and watches again.
      }
    }

    function connect() {
      wsTimer = 0;
      if (stopped || polling) return;
      var sock;
      try {
        sock = new WebSocket(wsURL);
      } catch (err) {
        // A blocked URL (CSP, mixed content) throws instead of failing later.
        wsFailures = WS_FAILURES_BEFORE_POLLING;
        polling = true;
        watch();
        return;
      }
      ws = sock;
      var opened = false;
      var openedAt = 0;
      var guard = later(WS_CONNECT_TIMEOUT_MS, function () {
        if (!opened) sock.close();
      });
      sock.onopen = function () {
        guard = cancel(guard);
        opened = true;
        openedAt = Date.now();
        wsFailures = 0;
        sendWatch();
      };
      sock.onmessage = function (ev) {
        var m;
        try {
          m = JSON.parse(ev.data);
        } catch (err) {
          return;
        }
        if (!m || typeof m !== "object") return;
        if (m.ev === "state") onState(m, gen);
        else if (m.ev === "error") onWatchError(m);
      };
      // Browsers fire close after error; some runtimes (Node 20's undici)
      // fire only error for a failed handshake. Either one ends the socket,
      // exactly once.
      sock.onerror = sock.onclose = function () {
        guard = cancel(guard);
        if (ws !== sock) return; // stopped, or already replaced
        ws = null;
        sock.onopen = sock.onmessage = sock.onerror = sock.onclose = null;
        try {
          sock.close();
        } catch (err) {
          // already closed
        }
        if (stopped) return;
        if (!opened) wsFailures++;
        else if (Date.now() - openedAt >= WS_STABLE_MS) wsAttempt = 0;
        if (wsFailures >= WS_FAILURES_BEFORE_POLLING) {
          polling = true;
          watch();
          return;
        }
        // Reconnect now only if there is something to watch; otherwise the
        // next ticket's watch() connects.
        if (ticket && !settled) wsTimer = later(backoff(wsAttempt++), connect);
      };
    }

    function onWatchError(m) {
      if (!ticket || (m.id && m.id !== ticket.id)) return; // about a ticket we left
      var code = String(m.error || "internal");
      var e = new LoginHubError(code, m.message, STATUS_OF[code] || 0);
      if (code === "expired" || code === "not_found") {
        // The ticket is gone: a fresh QR code, as for an expired state.
        if (code === "not_found") emitError(e);
        newTicket();
      } else if (code === "invalid_request" || code === "unauthorized" || code === "forbidden") {
        fatal(e); // our secret or address is refused: retrying cannot help
      } else {
        emitError(e);
        var g = gen;
        later(backoff(watchAttempt++), function () {
          if (g === gen && ws && ws.readyState === 1) sendWatch();
        });
      }
    }

    async function poll(g) {
      if (pollGen === g) return; // one loop per ticket
      pollGen = g;
      var id = ticket.id;
      var secret = ticket.watch_secret;
      for (var attempt = 0; !stopped && g === gen && !settled; ) {
        var began = Date.now();
        try {
          var s = await request("GET", ticketPath(id) + "?since=" + version + "&wait=" + POLL_WAIT_S, {
            secret: secret,
            ticketScoped: true,
            timeoutMs: (POLL_WAIT_S + 15) * 1000
          });
          attempt = 0;
          var fresh = onState(s, g);
          if (!fresh && Date.now() - began < POLL_MIN_INTERVAL_MS) await sleep(POLL_MIN_INTERVAL_MS);
        } catch (e) {
          if (e === ABORTED || stopped || g !== gen) return;
          if (e.status === 410 || e.status === 404) {
            newTicket();
            return;
          }
          if (!retryable(e)) {
            fatal(e);
            return;
          }
          emitError(e);
          await sleep(e.retryAfterMs || backoff(attempt++));
        }
      }
    }

    // --- lifecycle --------------------------------------------------------

    function stop() {
      if (stopped) return;
      stopped = true;
      timers.forEach(function (id) { clearTimeout(id); });
      timers.clear();
      requests.forEach(function (ac) { ac.abort(); });
      requests.clear();
      ticketRequests.clear();
      if (ws) {
        var sock = ws;
        ws = null;
        sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
        try {
          sock.close(1000, "stopped");
        } catch (err) {
          // already closed
        }
      }
      ticket = null; // drop the watch secret
    }

    function refresh() {
      // While redeeming the user has already confirmed; let that finish.
      if (!stopped && !redeeming) newTicket();
    }

    // withProvider logs in through a third-party provider instead of a
    // scan: see the comment at the top of this file. Call it from a click
    // handler: the popup must open in the click's own task.
    function withProvider(provider, opt) {
      opt = opt || {};
      if (stopped || !ticket || settled) {
        return Promise.reject(new LoginHubError("conflict", "no QR code to log in with yet", 0));
      }
      var t = ticket, g = gen;
      var popup = null;
      if (!opt.redirect && typeof global.open === "function") {
        // Opened blank now, pointed at the provider once the hub answers:
        // a window opened after an await is blocked as not user-initiated.
        popup = global.open("", "loginhub_" + provider, "popup,width=560,height=680");
      }
      var returnTo = opt.returnTo || (global.location ? global.location.href.split("#")[0] : "");
      var path = ticketPath(t.id) + "/oauth/" + encodeURIComponent(provider);
      return request("POST", path, { secret: t.watch_secret, ticketScoped: true, body: popup ? {} : { return_to: returnTo } })
        .then(async function (r) {
          if (g !== gen || stopped) {
            if (popup) popup.close();
            return;
          }
          if (popup) {
            popup.location.href = r.authorize_url;
            return;
          }
          if (!(await saveResume(absBase, t, dpop && dpop.privateKey ? dpop : null, clockOffsetMs))) {
            throw new LoginHubError("resume_unavailable", "this browser cannot keep the login across the provider's page; allow popups", 0);
          }
          global.location.assign(r.authorize_url);
        }, function (e) {
          if (popup) popup.close();
          throw e;
        });
    }

    (async function () {
      // Back from a provider's page (withProvider's redirect): finish that
      // login with its ticket and key.
      var resumed = await takeResume(absBase);
      if (stopped) return;
      if (resumed) {
        dpop = resumed.key || null;
        begin(resumed.ticket, Number(resumed.offset) || 0);
        return;
      }
      try {
        dpop = await makeDPoPKey();
      } catch (err) {
        dpop = null;
      }
      if (stopped) return;
      if (!dpop && o.requireDPoP) {
        fatal(new LoginHubError("dpop_unavailable", "WebCrypto ECDSA P-256 is not available (needs https or localhost)", 0));
        return;
      }
      newTicket();
    })();

    return { stop: stop, refresh: refresh, withProvider: withProvider };
  }

  // The one object every form of this file hands out (loginhub.d.ts
  // describes it): LoginHub.start, LoginHub.Error and its other name
  // LoginHubError, and default, the object itself, so that
  // `import LoginHub from` finds it whatever interop a bundler applies.
  var LoginHub = { start: start, Error: LoginHubError, LoginHubError: LoginHubError };
  LoginHub.default = LoginHub;
  return LoginHub;
});
