// Runs static/loginhub.js in Node against a hub, as web_test.go's fake hub
// expects: node client_harness.js <loginhub.js> <hub base URL> <ws|poll>.
// It prints one JSON line per callback, and on exit the console methods the
// library called (it must call none: it would risk logging secrets).
//
// The process is expected to exit by itself after onLogin: login.stop() must
// leave no timer or socket behind.
"use strict";
const fs = require("fs");
const vm = require("vm");

const [script, base, mode] = process.argv.slice(2);
const out = (ev) => process.stdout.write(JSON.stringify(ev) + "\n");

const consoleCalls = [];
for (const k of ["log", "info", "warn", "error", "debug", "trace", "dir"]) {
  console[k] = () => consoleCalls.push(k);
}
process.on("exit", () => out({ ev: "exit", console: consoleCalls }));

// What the library reads from a browser page.
globalThis.window = globalThis;
globalThis.location = new URL(base + "/");
vm.runInThisContext(fs.readFileSync(script, "utf8"), { filename: script });

const deadline = setTimeout(() => {
  out({ ev: "timeout" });
  process.exit(2);
}, 20000);

window.LoginHub.start({
  baseURL: base,
  usePolling: mode === "poll",
  requireDPoP: true,
  onQR(q) {
    out({ ev: "qr", id: q.id, ticket: q.ticket, qr_url: q.qr_url, png: q.png, svg: q.svg });
  },
  onState(s) {
    out({ ev: "state", id: s.id, state: s.state, version: s.version, scanner: s.scanner ? s.scanner.nickname : "" });
  },
  onLogin(session) {
    out({ ev: "login", nickname: session.user.nickname, token_type: session.token_type });
    clearTimeout(deadline);
  },
  onError(e) {
    out({ ev: "error", error: e.error, status: e.status, fatal: e.fatal });
    if (e.fatal) clearTimeout(deadline);
  },
});
