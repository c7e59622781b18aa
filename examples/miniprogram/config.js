// Where the example finds the hub. See README.md.
module.exports = {
  // The hub. In WeChat DevTools with "不校验合法域名" ticked (project.config.json
  // sets urlCheck: false), a local hub: `go run .` listens on :8080. In
  // production, your hub's https origin, added to the mini-program's
  // request domains (request合法域名).
  baseURL: "http://127.0.0.1:8080",

  // A sandbox user name, for a hub whose WeChat is the sandbox's. The
  // DevTools' wx.login and phone button talk to the real WeChat, whose
  // codes a sandbox hub does not know, so with a name here the example
  // asks the sandbox for them (/sandbox/wechat/wx.login and
  // /sandbox/wechat/getPhoneNumber), as that user's phone would get them.
  // "" for a hub configured with this mini-program's real appid and secret.
  sandboxUser: "alice",
};
