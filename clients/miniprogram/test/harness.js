// The mini-program SDK's test harness: the real hub binary started in
// sandbox mode on 127.0.0.1 port 0, a plain HTTP helper, and a fake `wx`
// whose request goes to that hub over real HTTP, whose login asks the
// sandbox's /sandbox/wechat/wx.login, and whose storage is a Map.
//
// LOGINHUB_BIN names the binary; `go test -run TestMiniProgramSDK .` builds
// it and runs these tests.
"use strict";

const http = require("node:http");
const { spawn } = require("node:child_process");

const START_DEADLINE_MS = 30000;

/**
 * startHub starts the hub binary and resolves, once it has printed its
 * "listening on" line, with {url, logs(), stop()}. `env` adds to or
 * overrides the defaults.
 */
function startHub(env) {
  const bin = process.env.LOGINHUB_BIN;
  if (!bin) {
    throw new Error("LOGINHUB_BIN is not set: run these tests with `go test -run TestMiniProgramSDK .`, which builds the hub");
  }
  const child = spawn(bin, [], {
    env: Object.assign({}, process.env, {
      LOGINHUB_ADDR: "127.0.0.1:0",
      LOGINHUB_SANDBOX: "on",
      LOGINHUB_TICKET_RATE: "0",
      LOGINHUB_LOGIN_RATE: "0",
      LOGINHUB_CALL_RATE: "0",
    }, env || {}),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  child.stderr.on("data", (b) => { logs += b; });
  const kill = () => child.kill("SIGKILL");
  process.on("exit", kill);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`the hub did not start within ${START_DEADLINE_MS} ms:\n${logs}`));
    }, START_DEADLINE_MS);
    child.on("error", (err) => { clearTimeout(timer); reject(err); });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the hub exited (${code}) before listening:\n${logs}`)); });
    child.stdout.on("data", function onData(b) {
      out += b;
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      child.stdout.removeListener("data", onData);
      child.stdout.resume(); // drain the rest
      clearTimeout(timer);
      const m = /listening on (\S+)/.exec(out.slice(0, nl));
      if (!m) {
        kill();
        reject(new Error(`the hub's first line does not say where it listens: ${out.slice(0, nl)}`));
        return;
      }
      resolve({
        url: "http://" + m[1],
        logs: () => logs,
        stop: async () => { kill(); await exited; process.removeListener("exit", kill); },
      });
    });
  });
}

/**
 * call makes one HTTP request and resolves with {status, headers, body}
 * (body parsed as JSON when it is). opts: {token, localAddress}.
 */
function call(method, url, body, opts) {
  const o = opts || {};
  return new Promise((resolve, reject) => {
    const headers = {};
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    if (o.token) headers.Authorization = "Bearer " + o.token;
    const req = http.request(url, { method, headers, localAddress: o.localAddress, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { text += c; });
      res.on("end", () => {
        let parsed = text;
        try { parsed = JSON.parse(text); } catch (err) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.setTimeout(o.timeout || 15000, () => req.destroy(new Error(`${method} ${url}: timeout`)));
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** sandboxCode is what wx.login returns on the sandbox user's phone. */
async function sandboxCode(hubURL, user) {
  const r = await call("POST", hubURL + "/sandbox/wechat/wx.login", { user });
  if (r.status !== 200 || !r.body.code) throw new Error(`sandbox wx.login for ${user}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.code;
}

/**
 * fakeWx returns a `wx` object for one phone:
 *   hubURL:       the hub, for wx.login's sandbox code
 *   user:         the sandbox user on this phone
 *   storage:      a Map to share with another fakeWx (the same phone, relaunched); default new
 *   localAddress: the phone's address (a loopback address such as 127.2.0.1 to be another /16)
 *   loginCode:    optional () => Promise<code>, instead of the sandbox's
 * It counts: wx.logins (wx.login calls) and wx.requests ([{method, path, status}]).
 */
function fakeWx(options) {
  const o = options;
  const storage = o.storage || new Map();
  const wx = {
    logins: 0,
    requests: [],
    storage,
    paths() { return wx.requests.map((r) => r.path); },
    login({ success, fail }) {
      wx.logins++;
      const code = o.loginCode ? o.loginCode() : sandboxCode(o.hubURL, o.user);
      Promise.resolve(code).then((c) => success({ code: c, errMsg: "login:ok" }), (err) => fail({ errMsg: "login:fail " + err.message }));
    },
    request({ url, method, data, header, timeout, success, fail }) {
      method = method || "GET";
      const u = new URL(url);
      let payload;
      if (data !== undefined && method === "GET") {
        for (const [k, v] of Object.entries(data)) u.searchParams.set(k, v);
      } else if (data !== undefined) {
        payload = typeof data === "string" ? data : JSON.stringify(data);
      }
      const entry = { method, path: u.pathname, status: 0 };
      wx.requests.push(entry);
      const req = http.request(u, { method, headers: header || {}, localAddress: o.localAddress, agent: false }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => { text += c; });
        res.on("end", () => {
          entry.status = res.statusCode;
          let parsed = text; // WeChat parses JSON bodies (dataType "json") and leaves the rest
          try { parsed = JSON.parse(text); } catch (err) { /* not JSON */ }
          success({ statusCode: res.statusCode, data: parsed, header: res.headers, errMsg: "request:ok" });
        });
      });
      req.setTimeout(timeout || 60000, () => req.destroy(new Error("timeout")));
      req.on("error", (err) => fail({ errMsg: "request:fail " + err.message }));
      if (payload !== undefined) req.write(payload);
      req.end();
    },
    // wx storage keeps a copy of what is stored (it serializes), and
    // answers "" for a missing key.
    getStorageSync(key) { return storage.has(key) ? JSON.parse(storage.get(key)) : ""; },
    setStorageSync(key, value) { storage.set(key, JSON.stringify(value)); },
    removeStorageSync(key) { storage.delete(key); },
  };
  return wx;
}

/** smsCodes returns the sandbox's messages to `phone` (E.164), oldest first. */
async function smsMessages(hubURL, phone) {
  const r = await call("GET", hubURL + "/sandbox/sms?phone=" + encodeURIComponent(phone));
  if (r.status !== 200) throw new Error(`/sandbox/sms: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.messages;
}

module.exports = { startHub, call, fakeWx, sandboxCode, smsMessages };
