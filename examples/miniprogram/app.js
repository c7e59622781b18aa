// The example's app: one loginhub client, shared by every page
// (getApp().hub), so that one silent login serves them all.
const { createClient } = require("./lib/loginhub.js");
const config = require("./config.js");

// sandbox asks a sandbox hub for what WeChat would give the sandbox user's
// phone (see config.js).
function sandbox(path) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: config.baseURL + path,
      method: "POST",
      data: { user: config.sandboxUser },
      success: (res) => (res.statusCode === 200 ? resolve(res.data) : reject(new Error("sandbox " + path + ": " + res.statusCode))),
      fail: (err) => reject(new Error(err.errMsg)),
    });
  });
}

App({
  config,
  hub: createClient({
    wx,
    baseURL: config.baseURL,
    getLoginCode: config.sandboxUser ? () => sandbox("/sandbox/wechat/wx.login").then((r) => r.code) : undefined,
  }),

  // phoneDetail returns what the phone-number button gave, or in sandbox
  // mode what it would give the sandbox user ({code, encryptedData, iv}).
  phoneDetail(detail) {
    if (!config.sandboxUser) return Promise.resolve(detail);
    if (!detail.code && !detail.encryptedData) return Promise.resolve(detail); // declined
    return sandbox("/sandbox/wechat/getPhoneNumber");
  },

  onLaunch() {
    // Silent login at launch; pages that need the session wait for the same
    // login and show its errors.
    this.hub.login().catch(() => {});
  },
});
