// The scan entry page. The desktop's QR code is "<hub>/s/<ticket>"; with
// that prefix registered for the mini-program ("扫普通链接二维码打开小程序"),
// WeChat opens this page with q = the scanned URL. The page logs in
// silently, claims the ticket, shows who is asking (anti-QRLjacking: the
// user must see the requester before confirming) and confirms or cancels.
const { StepUpRequiredError, WeChatUnavailableError } = require("../../lib/loginhub.js");

const app = getApp();

Page({
  data: {
    state: "loading", // loading, scanned, confirmed, cancelled, error
    id: "",
    requester: null, // {ip, location, device, user_agent, created_at}
    error: "",
    needsLogin: false,
  },

  onLoad(query) {
    return app.hub.scan(query.q || "").then(
      (s) => this.setData({ state: s.state, id: s.id, requester: s.requester }),
      (err) => this.failed(err)
    );
  },

  confirm() {
    return app.hub.confirm(this.data.id).then(
      (r) => this.setData({ state: r.state }),
      (err) => this.failed(err)
    );
  },

  cancel() {
    return app.hub.cancel(this.data.id).then(
      (r) => this.setData({ state: r.state }),
      (err) => this.failed(err)
    );
  },

  failed(err) {
    let message = err.message || err.error;
    if (err.error === "conflict") message = "Another account already scanned this code.";
    if (err.error === "expired") message = "This code has expired. Refresh the desktop page and scan again.";
    // The silent login could not finish here: the login page handles both.
    const needsLogin = err instanceof StepUpRequiredError || err instanceof WeChatUnavailableError;
    this.setData({ state: "error", error: message, needsLogin });
  },

  toLogin() {
    wx.redirectTo({ url: "/pages/login/login" });
  },

  done() {
    wx.exitMiniProgram({ fail: () => wx.redirectTo({ url: "/pages/login/login" }) });
  },
});
