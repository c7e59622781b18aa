// Scan-and-confirm and the phone number against the real hub.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startHub, call, fakeWx } = require("./harness.js");
const { createClient, LoginHubError } = require("../loginhub.js");

let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub.stop(); });

let users = 0;
function phone() {
  const user = `scan-${process.pid}-${++users}`;
  const wx = fakeWx({ hubURL: hub.url, user });
  return { wx, sdk: createClient({ wx, baseURL: hub.url }), user };
}

// desktop creates a ticket as the desktop page does.
async function desktopTicket() {
  const r = await call("POST", hub.url + "/v1/qr/tickets", {});
  assert.equal(r.status, 201);
  return r.body;
}

test("scan from the page's q on a cold start shows the requester; confirm logs the desktop in", async () => {
  const { wx, sdk } = phone();
  const t = await desktopTicket();
  // WeChat opens the scan page with q = the QR's URL, encoded.
  const scan = await sdk.scan(encodeURIComponent(t.qr_url));
  assert.equal(wx.logins, 1, "the scan page logged in silently first");
  assert.equal(scan.id, t.id);
  assert.equal(scan.state, "scanned");
  assert.equal(scan.requester.ip, "127.0.0.1");
  for (const k of ["location", "device", "created_at"]) assert.ok(k in scan.requester, `requester.${k}`);

  const done = await sdk.confirm(scan.id);
  assert.deepEqual([done.id, done.state], [t.id, "confirmed"]);
  const again = await sdk.confirm(scan.id);
  assert.deepEqual(again, done, "a repeated confirm answers the same");

  const redeemed = await call("POST", `${hub.url}/v1/qr/tickets/${t.id}/redeem`, {}, { token: t.watch_secret });
  assert.equal(redeemed.status, 200);
  assert.equal(redeemed.body.user.id, sdk.user().id);
});

test("scan from wx.scanCode's URL, then cancel", async () => {
  const { sdk } = phone();
  const t = await desktopTicket();
  const scan = await sdk.scan(t.qr_url);
  assert.equal(scan.state, "scanned");
  const done = await sdk.cancel(scan.id);
  assert.deepEqual([done.id, done.state], [t.id, "cancelled"]);
  const status = await call("GET", `${hub.url}/v1/qr/tickets/${t.id}`, undefined, { token: t.watch_secret });
  assert.equal(status.body.state, "cancelled");
});

test("a ticket another account scanned: conflict, as a typed error", async () => {
  const a = phone();
  const b = phone();
  const t = await desktopTicket();
  await a.sdk.scan(t.ticket);
  await assert.rejects(b.sdk.scan(t.ticket), (err) => err instanceof LoginHubError && err.error === "conflict" && err.status === 409);
  await assert.rejects(b.sdk.scan(""), (err) => err.error === "invalid_argument");
});

test("phone number from the button's code", async () => {
  const { sdk, user } = phone();
  await sdk.login();
  const button = await call("POST", hub.url + "/sandbox/wechat/getPhoneNumber", { user });
  assert.equal(button.status, 200);
  const got = await sdk.phoneNumber({ errMsg: "getPhoneNumber:ok", code: button.body.code });
  assert.equal(got.verified, true);
  assert.match(got.phone_masked, /^\d{3}\*{4}\d{4}$/);
  const ids = await sdk.api("GET", "/v1/me/identities");
  assert.ok(ids.identities.some((i) => i.provider === "phone"), "the number is linked");
});

test("phone number from the legacy encryptedData and iv", async () => {
  const { sdk, user } = phone();
  await sdk.login(); // the wx.login whose session_key encrypts the payload
  const button = await call("POST", hub.url + "/sandbox/wechat/getPhoneNumber", { user });
  const got = await sdk.phoneNumber({ errMsg: "getPhoneNumber:ok", encryptedData: button.body.encryptedData, iv: button.body.iv });
  assert.equal(got.verified, true);
  assert.equal(got.country_code, "86");
});

test("phone number declined: phone_denied, and nothing sent", async () => {
  const { wx, sdk } = phone();
  await assert.rejects(sdk.phoneNumber({ errMsg: "getPhoneNumber:fail user deny" }),
    (err) => err instanceof LoginHubError && err.error === "phone_denied");
  assert.equal(wx.requests.length, 0);
});
