// The login page: silent login on load, and what to do when it cannot be
// silent (risk control's step-up, WeChat down), the phone number, and a
// button to scan a desktop's QR code.
const { StepUpRequiredError, WeChatUnavailableError } = require("../../lib/loginhub.js");

const app = getApp();

Page({
  data: {
    mode: "loading", // loading, in, step_up, sms, error
    user: null,
    stepUp: null, // {phone_masked, region, ...} of a held login
    phone: "",
    code: "",
    codeSent: false,
    phoneMasked: "",
    error: "",
  },

  onLoad() {
    return this.login(false);
  },

  // login logs in silently, or with a fresh wx.login when force is set.
  login(force) {
    this.setData({ error: "" });
    return app.hub.login({ force: force === true }).then(
      (user) => this.setData({ mode: "in", user }),
      (err) => this.failed(err)
    );
  },

  relogin() {
    return this.login(true);
  },

  failed(err) {
    if (err instanceof StepUpRequiredError && err.stepUp.id) {
      // Risk control held the login: a code goes to the user's own phone.
      this.challenge = err;
      this.setData({ mode: "step_up", stepUp: err.stepUp, code: "", codeSent: false, error: "" });
    } else if (err instanceof WeChatUnavailableError) {
      // WeChat is down: log in with an SMS code instead.
      this.setData({ mode: "sms", code: "", codeSent: false, error: "WeChat login is unavailable right now. Log in with an SMS code." });
    } else {
      this.setData({ mode: this.data.user ? "in" : "error", error: err.message || err.error });
    }
  },

  onPhoneInput(e) {
    this.setData({ phone: e.detail.value });
  },

  onCodeInput(e) {
    this.setData({ code: e.detail.value });
  },

  // Step-up: send the code, then complete the held login with it.
  sendStepUpCode() {
    return app.hub.sendStepUpCode(this.challenge).then(
      () => this.setData({ codeSent: true, error: "" }),
      (err) => this.setData({ error: err.message || err.error })
    );
  },

  completeStepUp() {
    return app.hub.completeStepUp(this.challenge, this.data.code).then(
      (user) => this.setData({ mode: "in", user, stepUp: null, error: "" }),
      (err) => this.setData({ error: err.message || err.error })
    );
  },

  // SMS login, the fallback while WeChat is down.
  sendLoginCode() {
    return app.hub.sendLoginCode(this.data.phone).then(
      () => this.setData({ codeSent: true, error: "" }),
      (err) => this.setData({ error: err.message || err.error })
    );
  },

  smsLogin() {
    return app.hub.smsLogin(this.data.phone, this.data.code).then(
      (user) => this.setData({ mode: "in", user, error: "" }),
      (err) => this.setData({ error: err.message || err.error })
    );
  },

  // The phone-number button (open-type="getPhoneNumber").
  onGetPhoneNumber(e) {
    return app
      .phoneDetail(e.detail)
      .then((detail) => app.hub.phoneNumber(detail))
      .then(
        (r) => this.setData({ phoneMasked: r.phone_masked, error: "" }),
        (err) => this.setData({ error: err.error === "phone_denied" ? "" : err.message || err.error })
      );
  },

  // Scan a desktop's QR code from inside the mini-program.
  scanCode() {
    wx.scanCode({
      scanType: ["qrCode"],
      success: (res) => wx.navigateTo({ url: "/pages/scan/scan?q=" + encodeURIComponent(res.result) }),
    });
  },

  logout() {
    return app.hub.logout().then(
      () => this.setData({ mode: "error", user: null, phoneMasked: "", error: "Logged out." }),
      (err) => this.setData({ error: err.message || err.error })
    );
  },
});
