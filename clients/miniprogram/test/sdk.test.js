// The SDK without a hub: its source, the QR parsing, the device id, and
// failures before any hub answer.
"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { fakeWx } = require("./harness.js");
const { createClient, ticketFromQR, LoginHubError } = require("../loginhub.js");

const source = fs.readFileSync(path.join(__dirname, "..", "loginhub.js"), "utf8");

test("the SDK never logs", () => {
  assert.doesNotMatch(source, /console\s*\./);
});

test("the SDK stays within ES2017 and CommonJS (what WeChat's runtime loads without a build)", () => {
  // A guard against the usual slips, not a parser: optional chaining,
  // nullish coalescing, object spread or rest, Promise.prototype.finally
  // (ES2018+), and ES modules.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  for (const [what, re] of [["?.", /\?\.[A-Za-z_$[(]/], ["??", /\?\?/], ["...", /\.\.\./], [".finally(", /\.finally\(/],
    ["import", /^\s*import\s/m], ["export", /^\s*export\s/m], ["require(", /\brequire\(/]]) {
    assert.doesNotMatch(code, re, `the SDK uses ${what}`);
  }
  assert.match(code, /module\.exports\s*=/);
});

test("ticketFromQR takes the page's q, the QR's URL or the ticket", () => {
  const url = "https://login.example.com/s/AbC-123_xyz";
  assert.equal(ticketFromQR(encodeURIComponent(url)), "AbC-123_xyz");
  assert.equal(ticketFromQR(url), "AbC-123_xyz");
  assert.equal(ticketFromQR(url + "?from=poster#x"), "AbC-123_xyz");
  assert.equal(ticketFromQR("AbC-123_xyz"), "AbC-123_xyz");
  assert.equal(ticketFromQR(undefined), "");
});

test("the device id is made once and kept; a malformed stored one is replaced", () => {
  const wx = fakeWx({});
  const a = createClient({ wx, baseURL: "http://hub.invalid" });
  const id = a.deviceId();
  assert.match(id, /^[A-Za-z0-9_-]{16,64}$/);
  assert.equal(createClient({ wx, baseURL: "http://hub.invalid" }).deviceId(), id);
  wx.setStorageSync("loginhub.device_id", "no spaces allowed");
  const b = createClient({ wx, baseURL: "http://hub.invalid" }).deviceId();
  assert.match(b, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(wx.getStorageSync("loginhub.device_id"), b);
});

test("createClient needs wx and baseURL", () => {
  assert.throws(() => createClient({ baseURL: "http://hub.invalid" }), LoginHubError);
  assert.throws(() => createClient({ wx: fakeWx({}) }), LoginHubError);
});

test("wx.login failing: wx_login_failed, and no call to the hub", async () => {
  const wx = fakeWx({ loginCode: () => Promise.reject(new Error("no network")) });
  const sdk = createClient({ wx, baseURL: "http://hub.invalid" });
  await assert.rejects(sdk.login(), (err) => err instanceof LoginHubError && err.error === "wx_login_failed" && err.status === 0);
  assert.equal(wx.requests.length, 0);
});

test("no answer from the hub: a network error, and the stored session kept", async () => {
  const wx = fakeWx({});
  wx.request = ({ fail }) => fail({ errMsg: "request:fail timeout" });
  const session = { access_token: "at_x", refresh_token: "rt_x", refresh_expires_at: Date.now() + 1000, user: { id: "u1" } };
  wx.setStorageSync("loginhub.session", session);
  const sdk = createClient({ wx, baseURL: "http://hub.invalid" });
  await assert.rejects(sdk.request({ url: "/v1/me" }), (err) => err.error === "network" && err.status === 0);
  assert.deepEqual(wx.getStorageSync("loginhub.session"), session);
});

test("a refresh the hub cannot serve (503) keeps the refresh token and makes no wx.login", async () => {
  const wx = fakeWx({ loginCode: () => "never" });
  const answers = { "/v1/me": 401, "/v1/session/refresh": 503 };
  wx.request = ({ url, success }) => {
    const p = new URL(url).pathname;
    wx.requests.push({ path: p });
    success({ statusCode: answers[p], data: { error: answers[p] === 401 ? "unauthorized" : "internal", message: "" }, header: { "retry-after": "7" } });
  };
  const session = { access_token: "at_x", refresh_token: "rt_x", refresh_expires_at: Date.now() + 1000, user: { id: "u1" } };
  wx.setStorageSync("loginhub.session", session);
  const sdk = createClient({ wx, baseURL: "http://hub.invalid" });
  await assert.rejects(sdk.request({ url: "/v1/me" }), (err) => err.status === 503 && err.retryAfterMs === 7000);
  assert.equal(wx.logins, 0);
  assert.deepEqual(wx.getStorageSync("loginhub.session"), session);
});
