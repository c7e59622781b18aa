// Type-checked by web/types_test.go (tsc --noEmit): a page's own script
// beside <script src="/loginhub.js">, using the global LoginHub.
/// <reference types="@loginhub/desktop" />

const page: LoginHub.Login = LoginHub.start({
  onQR: (q) => { (document.getElementById("qr") as HTMLImageElement).src = q.png; },
  onLogin: (session: LoginHub.Session) => { document.title = session.user.nickname; },
  onError: (e) => { if (e instanceof LoginHub.Error && e.fatal) page.stop(); },
});
// @ts-expect-error: usePolling is a boolean
LoginHub.start({ usePolling: "yes" });
