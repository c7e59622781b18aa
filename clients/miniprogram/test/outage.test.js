// WeChat down: the hub is configured with mini-program credentials and a
// WeChat API base URL served here by a server that answers every request
// 503, as WeChat's API does when it is down. /v1/wx/login answers 503
// upstream_unavailable; the SDK surfaces WeChatUnavailableError (fallback
// "sms") and logs in with an SMS code instead (SMS is still emulated by
// the sandbox).
"use strict";

const http = require("node:http");
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startHub, call, fakeWx, smsMessages } = require("./harness.js");
const { createClient, WeChatUnavailableError, LoginHubError } = require("../loginhub.js");

let wechat;
const wechatRequests = [];
let hub;

before(async () => {
  wechat = http.createServer((req, res) => {
    wechatRequests.push(new URL(req.url, "http://wechat").pathname);
    req.resume();
    res.writeHead(503, { "Content-Type": "text/plain" });
    res.end("service unavailable");
  });
  await new Promise((resolve) => wechat.listen(0, "127.0.0.1", resolve));
  hub = await startHub({
    LOGINHUB_WECHAT_APPID: "wx00000000000000aa",
    LOGINHUB_WECHAT_SECRET: "sdk-test-secret-0000000000000000",
    LOGINHUB_WECHAT_BASE_URL: `http://127.0.0.1:${wechat.address().port}`,
  });
});

after(async () => {
  await hub.stop();
  await new Promise((resolve) => wechat.close(resolve));
});

let codes = 0;
function phone() {
  // wx.login still works on the phone (WeChat's app gives a code); it is
  // WeChat's server API that is down.
  const wx = fakeWx({ hubURL: hub.url, loginCode: () => `sdk-outage-code-${++codes}` });
  return { wx, sdk: createClient({ wx, baseURL: hub.url }) };
}

test("WeChat down: concurrent requests share one failed wx.login and get WeChatUnavailableError; SMS login works", async () => {
  const { wx, sdk } = phone();
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => sdk.request({ url: "/v1/me" })));
  assert.deepEqual(results.map((r) => r.status), Array(5).fill("rejected"));
  const err = results[0].reason;
  assert.ok(err instanceof WeChatUnavailableError, `got ${err}`);
  assert.ok(err instanceof LoginHubError);
  assert.equal(err.error, "upstream_unavailable");
  assert.equal(err.status, 503);
  assert.equal(err.fallback, "sms");
  assert.ok(results.every((r) => r.reason === err), "one login, one error for all");
  assert.equal(wx.logins, 1);
  assert.deepEqual(wx.paths(), ["/v1/wx/login"]);
  assert.ok(wechatRequests.some((p) => p.endsWith("/jscode2session")), `the hub tried WeChat: ${wechatRequests}`);

  // The app offers SMS login.
  const number = "+8613800138411";
  const sent = await sdk.sendLoginCode(number);
  assert.equal(sent.expires_in, 300);
  const msgs = await smsMessages(hub.url, number);
  assert.deepEqual(msgs.map((m) => m.purpose), ["login"]);
  const user = await sdk.smsLogin(number, msgs[0].code);
  assert.equal(user.is_new, true);
  const res = await sdk.request({ url: "/v1/me" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.user.id, user.id);
  assert.deepEqual(res.data.session.amr, ["sms"]);
  assert.equal(wx.logins, 1, "no wx.login while a session lives");
  // The SMS login carried the device id.
  const logins = await sdk.api("GET", "/v1/me/logins");
  assert.deepEqual(logins.logins.map((l) => l.method + " " + l.device_id), ["sms " + sdk.deviceId()]);

  // A wrong code is a plain LoginHubError.
  await assert.rejects(sdk.smsLogin(number, "000000"), (e) => e instanceof LoginHubError && !(e instanceof WeChatUnavailableError) && e.status === 401);
});

test("WeChat down: a session refreshes without WeChat", async () => {
  const { wx, sdk } = phone();
  const number = "+8613800138412";
  await sdk.sendLoginCode(number);
  const [msg] = await smsMessages(hub.url, number);
  const user = await sdk.smsLogin(number, msg.code);
  // The hub refuses the access token; the refresh needs no WeChat.
  const s = wx.getStorageSync("loginhub.session");
  s.access_token = s.access_token.slice(0, -4) + "AAAA";
  wx.setStorageSync("loginhub.session", s);
  const again = createClient({ wx, baseURL: hub.url });
  const me = await again.me();
  assert.equal(me.user.id, user.id);
  assert.equal(wx.logins, 0);
  assert.ok(wx.paths().includes("/v1/session/refresh"));
  const direct = await call("GET", hub.url + "/v1/me", undefined, { token: wx.getStorageSync("loginhub.session").access_token });
  assert.equal(direct.status, 200);
});
