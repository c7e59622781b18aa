// Silent login against the real hub: cold start, warm start, a refused
// access token, a refused or expired refresh token, and one login (or one
// refresh) however many requests need it at once.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startHub, call, fakeWx } = require("./harness.js");
const { createClient, LoginHubError } = require("../loginhub.js");

let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub.stop(); });

let users = 0;
// phone returns a fake wx for a new sandbox user (or the given storage's
// phone, relaunched) and an SDK client on it.
function phone(opts) {
  const o = Object.assign({ hubURL: hub.url, user: `silent-${process.pid}-${++users}` }, opts);
  const wx = fakeWx(o);
  return { wx, sdk: createClient({ wx, baseURL: hub.url }), user: o.user };
}

function stored(wx) {
  return wx.getStorageSync("loginhub.session");
}

function mutate(wx, f) {
  const s = stored(wx);
  f(s);
  wx.setStorageSync("loginhub.session", s);
}

test("cold start: one wx.login, the session and the device id kept in wx storage", async () => {
  const { wx, sdk } = phone();
  const user = await sdk.login();
  assert.equal(user.is_new, true);
  assert.equal(wx.logins, 1);
  assert.deepEqual(wx.paths(), ["/v1/wx/login"]);
  const s = stored(wx);
  assert.match(s.access_token, /\S{20,}/);
  assert.match(s.refresh_token, /\S{20,}/);
  assert.ok(s.refresh_expires_at > Date.now() + 6 * 24 * 3600 * 1000, "the refresh token is kept for 7 days");
  const device = wx.getStorageSync("loginhub.device_id");
  assert.match(device, /^[A-Za-z0-9_-]{16,64}$/);
  assert.equal(sdk.deviceId(), device);

  const me = await sdk.me();
  assert.equal(me.user.id, user.id);
  assert.deepEqual(wx.paths(), ["/v1/wx/login", "/v1/me"]);
  // The hub saw the device id with the login.
  const logins = await call("GET", hub.url + "/v1/me/logins", undefined, { token: s.access_token });
  assert.equal(logins.status, 200);
  assert.deepEqual(logins.body.logins.map((l) => [l.method, l.outcome, l.device_id]), [["wx", "ok", device]]);
});

test("warm start: the stored session is used, with no wx.login and no refresh", async () => {
  const first = phone();
  const user = await first.sdk.login();
  // The mini-program is relaunched: a new client on the same storage.
  const { wx, sdk } = phone({ storage: first.wx.storage, user: first.user });
  assert.equal(sdk.user().id, user.id);
  const res = await sdk.request({ url: "/v1/me" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.user.id, user.id);
  assert.equal(wx.logins, 0);
  assert.deepEqual(wx.paths(), ["/v1/me"]);
  assert.equal(await sdk.login().then((u) => u.id), user.id);
  assert.deepEqual(wx.paths(), ["/v1/me"], "login() with a stored session makes no call");
});

test("access token refused: one refresh (rotated), then the request again; no wx.login", async () => {
  const first = phone();
  const user = await first.sdk.login();
  const old = stored(first.wx);
  // The hub no longer knows the stored access token.
  mutate(first.wx, (s) => { s.access_token = s.access_token.slice(0, -4) + "AAAA"; });
  const { wx, sdk } = phone({ storage: first.wx.storage, user: first.user });
  const res = await sdk.request({ url: "/v1/me" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.user.id, user.id);
  assert.equal(wx.logins, 0);
  assert.deepEqual(wx.requests.map((r) => r.path + " " + r.status), ["/v1/me 401", "/v1/session/refresh 200", "/v1/me 200"]);
  const now = stored(wx);
  assert.notEqual(now.refresh_token, old.refresh_token, "the rotated refresh token is kept");
  assert.notEqual(now.access_token, old.access_token);
});

test("refresh token refused: back to wx.login, same user", async () => {
  const first = phone();
  const user = await first.sdk.login();
  // The session is revoked on the hub: both of its tokens are dead.
  const out = await call("POST", hub.url + "/v1/session/logout", {}, { token: stored(first.wx).access_token });
  assert.equal(out.status, 204);
  const { wx, sdk } = phone({ storage: first.wx.storage, user: first.user });
  const res = await sdk.request({ url: "/v1/me" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.user.id, user.id);
  assert.equal(wx.logins, 1);
  assert.deepEqual(wx.requests.map((r) => r.path + " " + r.status),
    ["/v1/me 401", "/v1/session/refresh 401", "/v1/wx/login 200", "/v1/me 200"]);
});

test("refresh token past its 7 days: wx.login without trying it", async () => {
  const first = phone();
  const user = await first.sdk.login();
  await call("POST", hub.url + "/v1/session/logout", {}, { token: stored(first.wx).access_token });
  mutate(first.wx, (s) => { s.refresh_expires_at = Date.now() - 1000; });
  const { wx, sdk } = phone({ storage: first.wx.storage, user: first.user });
  const res = await sdk.request({ url: "/v1/me" });
  assert.equal(res.data.user.id, user.id);
  assert.deepEqual(wx.requests.map((r) => r.path + " " + r.status), ["/v1/me 401", "/v1/wx/login 200", "/v1/me 200"]);
});

test("10 concurrent requests on a cold start: exactly one wx.login and one /v1/wx/login", async () => {
  const { wx, sdk } = phone();
  const all = await Promise.all(Array.from({ length: 10 }, () => sdk.request({ url: "/v1/me" })));
  assert.deepEqual(all.map((r) => r.statusCode), Array(10).fill(200));
  assert.equal(new Set(all.map((r) => r.data.user.id)).size, 1);
  assert.equal(wx.logins, 1, "wx.login calls on the phone");
  assert.equal(wx.paths().filter((p) => p === "/v1/wx/login").length, 1);
  // The hub saw one login of this user.
  const logins = await call("GET", hub.url + "/v1/me/logins", undefined, { token: stored(wx).access_token });
  assert.equal(logins.status, 200);
  assert.deepEqual(logins.body.logins.map((l) => l.method + " " + l.outcome), ["wx ok"]);
});

test("10 concurrent requests with a refused access token: exactly one refresh", async () => {
  const first = phone();
  const user = await first.sdk.login();
  mutate(first.wx, (s) => { s.access_token = s.access_token.slice(0, -4) + "AAAA"; });
  const { wx, sdk } = phone({ storage: first.wx.storage, user: first.user });
  const all = await Promise.all(Array.from({ length: 10 }, () => sdk.request({ url: "/v1/me" })));
  assert.deepEqual(all.map((r) => r.statusCode), Array(10).fill(200));
  assert.ok(all.every((r) => r.data.user.id === user.id));
  // A second refresh with the same token would have revoked the family.
  assert.equal(wx.paths().filter((p) => p === "/v1/session/refresh").length, 1);
  assert.equal(wx.logins, 0);
});

test("request() hands back the answer of the retry, and non-401 statuses untouched", async () => {
  const { wx, sdk } = phone();
  const res = await sdk.request({ url: "/v1/qr/tickets/nope/confirm", method: "POST", data: {} });
  assert.equal(res.statusCode, 404);
  assert.equal(res.data.error, "not_found");
  await assert.rejects(sdk.confirm("nope"), (err) => err instanceof LoginHubError && err.error === "not_found" && err.status === 404);
  assert.equal(wx.logins, 1);
});

test("logout revokes the session on the hub and forgets it, keeping the device id", async () => {
  const { wx, sdk } = phone();
  await sdk.login();
  const { access_token: token } = stored(wx);
  const device = sdk.deviceId();
  await sdk.logout();
  assert.equal(stored(wx), "");
  assert.equal(sdk.user(), null);
  assert.equal(wx.getStorageSync("loginhub.device_id"), device);
  const me = await call("GET", hub.url + "/v1/me", undefined, { token });
  assert.equal(me.status, 401);
});
