// Risk control: a user with a phone who logs in from another place (another
// /16, since the hub runs without a GeoIP database) on a new device gets a
// StepUpRequiredError, and the SDK's helpers complete the login with the
// SMS code the sandbox received.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startHub, call, fakeWx, smsMessages } = require("./harness.js");
const { createClient, StepUpRequiredError, LoginHubError } = require("../loginhub.js");

let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub.stop(); });

test("a new place and device: step_up_required, then the SMS code completes the login", async () => {
  const user = `stepup-${process.pid}`;
  // At home (127.0.0.0/16): the first login, then the phone linked from
  // WeChat's button.
  const homeWx = fakeWx({ hubURL: hub.url, user, localAddress: "127.0.0.1" });
  const home = createClient({ wx: homeWx, baseURL: hub.url });
  const me = await home.login();
  const button = await call("POST", hub.url + "/sandbox/wechat/getPhoneNumber", { user });
  const linked = await home.phoneNumber({ code: button.body.code });
  // The number in clear, to read the sandbox's SMS inbox (a fresh login may export it).
  const data = await home.api("GET", "/v1/me/data");
  const number = "+86" + data.personal_data.phone.number;

  // Elsewhere (127.2.0.0/16) on a new phone: a new device id.
  const awayWx = fakeWx({ hubURL: hub.url, user, localAddress: "127.2.0.1" });
  const away = createClient({ wx: awayWx, baseURL: hub.url });
  assert.notEqual(away.deviceId(), home.deviceId());
  let held;
  await assert.rejects(away.request({ url: "/v1/me" }), (err) => {
    held = err;
    return err instanceof StepUpRequiredError && err instanceof LoginHubError && err.status === 401;
  });
  assert.match(held.stepUp.id, /^su_/);
  assert.deepEqual(held.stepUp.methods, ["sms"]);
  assert.equal(held.stepUp.phone_masked, "+86 " + linked.phone_masked);
  assert.equal(held.stepUp.region, "127.2.0.0/16");
  assert.equal(held.stepUp.expires_in, 300);
  assert.equal(away.user(), null, "a held login keeps no session");

  const sent = await away.sendStepUpCode(held);
  assert.equal(sent.expires_in, 300);
  const msgs = await smsMessages(hub.url, number);
  assert.deepEqual(msgs.map((m) => m.purpose), ["step_up"]);

  await assert.rejects(away.completeStepUp(held, msgs[0].code === "000000" ? "111111" : "000000"),
    (err) => err.error === "unauthorized" && err.status === 401);
  const done = await away.completeStepUp(held.stepUp, msgs[0].code);
  assert.equal(done.id, me.id);
  const res = await away.request({ url: "/v1/me" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.user.id, me.id);
  assert.ok(res.data.session.amr.includes("sms"), "the session proved the phone");
  assert.equal(awayWx.logins, 1);

  // The place and device are known now: the next wx.login passes.
  const again = await away.login({ force: true });
  assert.equal(again.id, me.id);
  assert.equal(awayWx.logins, 2);
});
