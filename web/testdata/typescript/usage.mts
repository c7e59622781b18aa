// Type-checked by web/types_test.go (tsc --noEmit): a front-end build's use
// of loginhub.js through its package, as an ES module.
import LoginHub, { start, LoginHubError, Error as HubError } from "@loginhub/desktop";
import type { Login, QRCode, Session, StartOptions, StateEvent } from "@loginhub/desktop";

const qr = document.createElement("img");
const status = document.createElement("p");

const options: StartOptions = {
  baseURL: "https://login.example.com",
  onQR(q: QRCode) {
    qr.src = q.svg;
    qr.alt = q.qr_url + " " + q.png + " " + q.ticket + " " + q.id + " " + q.expires_at;
  },
  onState(s: StateEvent) {
    status.textContent = s.state === "scanned" && s.scanner ? "Scanned by " + s.scanner.nickname : s.state;
    const v: number = s.version;
    void v;
  },
  onLogin: (session: Session) =>
    fetch("/api/login", { method: "POST", headers: { Authorization: session.token_type + " " + session.access_token } }),
  onError(e) {
    const code: string = e.error;
    if (e.fatal && e.status === 429) setTimeout(() => login.refresh(), e.retryAfterMs);
    status.textContent = code + ": " + e.message;
  },
  usePolling: false,
  requireDPoP: true,
};

const login: Login = start(options);

document.getElementById("qq")?.addEventListener("click", () => {
  login.withProvider("qq").catch((e: unknown) => {
    if (e instanceof LoginHubError && e.error === "resume_unavailable") status.textContent = e.message;
  });
});
document.getElementById("weibo")?.addEventListener("click", async () => {
  await login.withProvider("weibo", { redirect: true, returnTo: location.href });
});

// The default export and the global's other names are the same object.
const again: Login = LoginHub.start({ onLogin: (s) => void s.user.nickname });
again.stop();
const same: typeof LoginHubError = HubError;
const err = new same("network", "offline", 0);
const isNew: boolean | undefined = LoginHub.default.start === start ? err.fatal : undefined;
void isNew;

// Mistakes the types must catch.
// @ts-expect-error: misspelt option
start({ onLgin() {} });
// @ts-expect-error: onQR's argument is a QRCode, not a string
start({ onQR: (q: string) => q });
// @ts-expect-error: withProvider's options
login.withProvider("qq", { redirct: true });
// @ts-expect-error: the handle has stop, refresh and withProvider only
login.restart();
// @ts-expect-error: status is a number
const s: string = err.status;
void s;
