// The example mini-program (examples/miniprogram) run against the real hub:
// its app.js and pages are loaded with WeChat's globals faked (wx, App,
// Page, getApp) and driven as WeChat would: the login page logs in and
// links the phone number, the scan entry page opens with the QR's `q`,
// shows the requester and confirms.
"use strict";

const path = require("node:path");
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startHub, call, fakeWx } = require("./harness.js");

const root = path.join(__dirname, "..", "..", "..", "examples", "miniprogram");
let hub;
let app;
const pages = {};

before(async () => {
  hub = await startHub();
  // The example's config.js, pointed at this hub, with a sandbox user.
  const configPath = require.resolve(path.join(root, "config.js"));
  require.cache[configPath] = { id: configPath, filename: configPath, loaded: true, exports: { baseURL: hub.url, sandboxUser: `example-${process.pid}` } };
  global.wx = Object.assign(fakeWx({ hubURL: hub.url }), {
    // The example never calls the fake's own wx.login: in sandbox mode it
    // gets codes from the sandbox (its getLoginCode).
    login() { throw new Error("wx.login called in sandbox mode"); },
  });
  global.App = (def) => { app = def; };
  global.getApp = () => app;
  global.Page = (def) => { pages.current = def; };
  require(path.join(root, "app.js"));
  app.onLaunch();
});

after(async () => { await hub.stop(); });

// open instantiates a page as WeChat does: its data copied, setData merging.
// A page's module runs once; its Page() definition is kept by name.
function open(name) {
  if (!pages[name]) {
    pages.current = null;
    require(path.join(root, "pages", name, name + ".js"));
    assert.ok(pages.current, `pages/${name}/${name}.js called Page()`);
    pages[name] = pages.current;
  }
  const def = pages[name];
  const page = Object.assign({}, def, { data: JSON.parse(JSON.stringify(def.data)) });
  page.setData = (d) => Object.assign(page.data, d);
  return page;
}

test("the login page logs in silently and links the phone number", async () => {
  const page = open("login");
  await page.onLoad({});
  assert.equal(page.data.mode, "in", page.data.error);
  assert.ok(page.data.user.id);
  // The button's detail (in sandbox mode replaced by the sandbox's).
  await page.onGetPhoneNumber({ detail: { errMsg: "getPhoneNumber:ok", code: "from-the-real-wechat" } });
  assert.equal(page.data.error, "");
  assert.match(page.data.phoneMasked, /^\d{3}\*{4}\d{4}$/);
  // Declined: nothing shown, nothing sent.
  const sent = global.wx.requests.length;
  await page.onGetPhoneNumber({ detail: { errMsg: "getPhoneNumber:fail user deny" } });
  assert.equal(global.wx.requests.length, sent);
});

test("the scan entry page reads q, shows the requester, confirms; the desktop redeems", async () => {
  const t = (await call("POST", hub.url + "/v1/qr/tickets", {})).body;
  const page = open("scan");
  await page.onLoad({ q: encodeURIComponent(t.qr_url) });
  assert.equal(page.data.state, "scanned", page.data.error);
  assert.equal(page.data.id, t.id);
  assert.equal(page.data.requester.ip, "127.0.0.1");
  await page.confirm();
  assert.equal(page.data.state, "confirmed");
  const redeemed = await call("POST", `${hub.url}/v1/qr/tickets/${t.id}/redeem`, {}, { token: t.watch_secret });
  assert.equal(redeemed.status, 200);
  assert.equal(redeemed.body.user.id, app.hub.user().id);
});

test("the scan entry page cancels, and says so when the code is another account's", async () => {
  const t = (await call("POST", hub.url + "/v1/qr/tickets", {})).body;
  const page = open("scan");
  await page.onLoad({ q: encodeURIComponent(t.qr_url) });
  await page.cancel();
  assert.equal(page.data.state, "cancelled");

  const taken = (await call("POST", hub.url + "/v1/qr/tickets", {})).body;
  const other = await call("POST", hub.url + "/sandbox/wechat/wx.login", { user: `someone-else-${process.pid}` });
  const s = (await call("POST", hub.url + "/v1/wx/login", { code: other.body.code })).body;
  assert.equal((await call("POST", hub.url + "/v1/qr/scan", { ticket: taken.ticket }, { token: s.access_token })).status, 200);
  const again = open("scan");
  await again.onLoad({ q: encodeURIComponent(taken.qr_url) });
  assert.equal(again.data.state, "error");
  assert.match(again.data.error, /Another account/);
  assert.equal(again.data.needsLogin, false);
});
