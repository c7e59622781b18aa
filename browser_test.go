package main

// Browser tests: the desktop page (/) and the sandbox phone simulator
// (/sandbox/phone) driven in a real headless Chromium through chromedp, with
// the QR code read back from the rendered page by zbarimg. They skip when
// chromium or zbarimg is missing, unless LOGINHUB_TEST_REQUIRE_ALL=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/browsertest"
)

// browserWait bounds every single wait on a page.
const browserWait = 30 * time.Second

// requireTool returns the first candidate that exists (an absolute path) or
// is on PATH. Without one the test skips, or fails under
// LOGINHUB_TEST_REQUIRE_ALL=1.
func requireTool(t *testing.T, missing string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("LOGINHUB_TEST_REQUIRE_ALL") == "1" {
		t.Fatalf("%s (LOGINHUB_TEST_REQUIRE_ALL=1)", missing)
	}
	t.Skip(missing)
	return ""
}

func requireZbarimg(t *testing.T) string {
	t.Helper()
	return requireTool(t, "zbarimg not installed; apt-get install zbar-tools", "zbarimg")
}

// browserTab is one tab of a headless Chromium, with the console messages it
// produced, for failure reports and the no-uncaught-exception check.
type browserTab struct {
	t   *testing.T
	ctx context.Context // chromedp context of the tab; no deadline of its own
	hub *testHub        // the hub whose logs go into failure reports

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newBrowser starts a fresh headless Chromium (own profile directory) and
// returns its first tab. The browser is closed, and its process waited for,
// when the test ends. extra options follow the defaults, so they may
// override them.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browserTab {
	t.Helper()
	exe := requireTool(t, "chromium not installed; apt-get install chromium",
		"/usr/bin/chromium", "chromium", "chromium-browser")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
	)
	opts = append(opts, extra...)
	// The outer bound of the whole browser session: if a test hangs past
	// it, the allocator kills Chromium and every pending action fails.
	life, stopLife := context.WithTimeout(context.Background(), 3*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Cleanups run last-in first-out: close the browser gracefully, then
	// wait for the process, then release the outer bound.
	t.Cleanup(stopLife)
	t.Cleanup(cancelAlloc)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
		defer ccancel()
		if err := chromedp.Cancel(cctx); err != nil && ctx.Err() == nil {
			t.Logf("closing chromium: %v", err)
		}
		cancel()
	})
	// The first Run starts the browser; it must not carry a short deadline,
	// which would end the whole browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return startTab(t, ctx)
}

// newTab opens another tab in the same browser.
func (b *browserTab) newTab() *browserTab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel) // runs before the browser's own cleanup
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("opening a tab: %v", err)
	}
	return startTab(b.t, ctx)
}

func startTab(t *testing.T, ctx context.Context) *browserTab {
	b := &browserTab{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		// Ends when the tab's context ends; only records, never logs.
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// open navigates the tab to h.URL+path in a 1000x700 viewport.
func (b *browserTab) open(h *testHub, path string) {
	b.t.Helper()
	b.hub = h
	b.do("open "+path,
		chromedp.EmulateViewport(1000, 700),
		chromedp.Navigate(h.URL+path),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
}

// do runs actions within browserWait and fails the test on error.
func (b *browserTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	browserRun(b, what, chromedp.Steps(actions...))
}

// browserRun runs one action within browserWait and returns its value.
func browserRun[T any](b *browserTab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.report())
	}
	return v
}

// evalJS evaluates a JavaScript expression and decodes its value.
func evalJS[T any](b *browserTab, what, expr string) T {
	b.t.Helper()
	return browserRun(b, what, chromedp.Evaluate[T](expr))
}

// waitJS waits until the JavaScript expression is truthy, within browserWait
// (or the shorter limit, if given).
func (b *browserTab) waitJS(what, expr string, limit ...time.Duration) {
	b.t.Helper()
	d := browserWait
	if len(limit) > 0 {
		d = limit[0]
	}
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	var err error
	for {
		// Interval polling, not requestAnimationFrame: a tab in the background
		// may not paint.
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d)))
		if err == nil || !navigatedAway(err) || ctx.Err() != nil {
			break
		}
		// The page navigated (to a provider and back): wait on the new one.
	}
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\n%s", what, err, b.report())
	}
}

// navigatedAway reports whether err is the browser's answer to a script
// whose document went away: the page navigated while it ran.
func navigatedAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Inspected target navigated or closed") ||
		strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Cannot find context with specified id")
}

// report describes the tab for a failure message: its URL and visible text,
// what it wrote to the console, and the tail of the hub's log.
func (b *browserTab) report() string {
	var sb strings.Builder
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`location.href + "\n" + (document.body ? document.body.innerText : "(no body)")`))
	if err != nil {
		page = "(page unreadable: " + err.Error() + ")"
	}
	fmt.Fprintf(&sb, "--- page:\n%s\n", page)
	b.mu.Lock()
	for _, m := range b.console {
		fmt.Fprintf(&sb, "--- console %s\n", m)
	}
	b.mu.Unlock()
	if b.hub != nil {
		logs := b.hub.logs.String()
		if len(logs) > 4000 {
			logs = "…" + logs[len(logs)-4000:]
		}
		fmt.Fprintf(&sb, "--- hub log:\n%s", logs)
	}
	return sb.String()
}

// noExceptions fails the test if the page threw an uncaught exception,
// left a promise rejection unhandled, or had the browser refuse a script,
// style, image or connection under its Content-Security-Policy.
func (b *browserTab) noExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		switch {
		case m.IsException():
			b.t.Errorf("uncaught exception in %s:%d: %s", m.URL, m.Line, m.Text)
		case strings.Contains(m.Text, "Content Security Policy"):
			b.t.Errorf("Content-Security-Policy violation in %s: %s", m.URL, m.Text)
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// qrLoadedJS is true once img#qr shows the PNG of the ticket named by its
// data-ticket-id, and #qr-url shows that ticket's URL. currentSrc is checked
// because after a src change the old image stays the current one (loaded,
// naturalWidth > 0) until the new one arrives.
const qrLoadedJS = `(() => {
  const q = document.getElementById("qr");
  const id = q.dataset.ticketId;
  return !!id && !q.hidden && !q.classList.contains("dim") && q.complete && q.naturalWidth > 0 &&
    q.currentSrc.endsWith("/v1/qr/tickets/" + encodeURIComponent(id) + "/qr.svg") &&
    document.getElementById("qr-url").textContent.length > 0;
})()`

type qrShown struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

const qrShownJS = `({id: document.getElementById("qr").dataset.ticketId || "",
  url: document.getElementById("qr-url").textContent})`

// shownQR waits until the desktop page shows a loaded QR code whose ticket
// id satisfies accept, screenshots img#qr and decodes it with zbarimg. It
// retries when the page swapped the QR code during the screenshot (short
// ttls). It returns what the page said and what the image holds.
func shownQR(b *browserTab, zbar string, accept func(id string) bool) (shown qrShown, decoded string) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	for attempt := 0; ; attempt++ {
		if time.Now().After(deadline) {
			b.t.Fatalf("no stable QR code on the page within %v\n%s", browserWait, b.report())
		}
		b.waitJS("the QR image to load", qrLoadedJS)
		before := evalJS[qrShown](b, "read the QR", qrShownJS)
		if !accept(before.ID) {
			// Still the old code: wait for the page to move on.
			b.waitJS("a new QR code", fmt.Sprintf(`document.getElementById("qr").dataset.ticketId !== %s`, jsString(before.ID)))
			continue
		}
		png := browserRun(b, "screenshot img#qr", chromedp.Screenshot(chromedp.CSS("#qr")))
		after := evalJS[qrShown](b, "read the QR again", qrShownJS)
		if after != before {
			continue // replaced while we looked
		}
		return before, decodeQR(b.t, zbar, png, attempt)
	}
}

// decodeQR writes png to a temporary file and returns the one symbol
// zbarimg finds in it.
func decodeQR(t *testing.T, zbar string, png []byte, n int) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), fmt.Sprintf("qr-%d.png", n))
	if err := os.WriteFile(file, png, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, zbar, "--raw", "-q", file).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code in the screenshot of img#qr (%d bytes): %v", len(png), err)
	}
	text := strings.TrimRight(string(out), "\r\n")
	if text == "" || strings.Contains(text, "\n") {
		t.Fatalf("zbarimg: want exactly one symbol, got %q", out)
	}
	return text
}

// ticketOfQRURL is the signed ticket: the last path segment of qr_url.
func ticketOfQRURL(t *testing.T, h *testHub, qrURL string) string {
	t.Helper()
	if !strings.HasPrefix(qrURL, h.URL+"/s/") {
		t.Fatalf("qr_url %q does not start with %s/s/", qrURL, h.URL)
	}
	u, err := url.Parse(qrURL)
	if err != nil {
		t.Fatalf("qr_url %q: %v", qrURL, err)
	}
	tk := u.Path[strings.LastIndex(u.Path, "/")+1:]
	if tk == "" {
		t.Fatalf("qr_url %q has no ticket", qrURL)
	}
	return tk
}

// statusJS is true when #status has the given data-state.
func statusJS(state string) string {
	return fmt.Sprintf(`document.getElementById("status").dataset.state === %s`, jsString(state))
}

func TestBrowserDesktopLogin(t *testing.T) {
	t.Run("websocket", func(t *testing.T) { testBrowserDesktopLogin(t, "/", true) })
	// /?poll=1 makes loginhub.js long-poll instead of using the WebSocket.
	t.Run("longpoll", func(t *testing.T) { testBrowserDesktopLogin(t, "/?poll=1", false) })
}

func testBrowserDesktopLogin(t *testing.T, page string, screenshot bool) {
	zbar := requireZbarimg(t)
	h := startHub(t, nil)
	b := newBrowser(t) // registered last, so closed before the hub stops
	b.open(h, page)

	b.waitJS(`#status data-state "pending"`, statusJS("pending"))
	shown, decoded := shownQR(b, zbar, func(string) bool { return true })
	if decoded != shown.URL {
		t.Fatalf("the QR image holds %q, #qr-url shows %q", decoded, shown.URL)
	}
	ticket := ticketOfQRURL(t, h, decoded)

	if screenshot && os.Getenv("LOGINHUB_SCREENSHOT") == "1" {
		// The page as a user first sees it: waiting for a scan.
		png := browserRun(b, "screenshot the page", chromedp.CaptureScreenshot())
		if err := os.MkdirAll("docs", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("docs", "desktop.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Record every data-state #status takes from now on: each mutation's
	// old value, plus the current value when read, is the full history.
	b.do("install the state recorder", chromedp.Evaluate[chromedp.Void](`(() => {
  const s = document.getElementById("status");
  window.__states = [];
  new MutationObserver(ms => { for (const m of ms) window.__states.push(m.oldValue); })
    .observe(s, {attributes: true, attributeFilter: ["data-state"], attributeOldValue: true});
})()`))

	erin := phoneLogin(t, h, "erin")
	phone := client("")
	r := call(t, phone, "POST", h.URL+"/v1/qr/scan", erin.AccessToken, map[string]string{"ticket": ticket})
	mustStatus(t, "scan the decoded ticket", r, 200)
	var scan struct{ ID string }
	r.decode(t, &scan)
	if scan.ID != shown.ID {
		t.Fatalf("scan answered ticket %q, img#qr data-ticket-id is %q", scan.ID, shown.ID)
	}

	// Confirm only once the page has shown the scan, so "scanned" is
	// observed rather than possibly folded into "confirmed".
	b.waitJS(`#status data-state "scanned"`, statusJS("scanned"))
	if txt := evalJS[string](b, "read #status", `document.getElementById("status").textContent`); !strings.Contains(txt, "erin") {
		t.Errorf("#status while scanned: %q, want the scanner's nickname erin", txt)
	}

	r = call(t, phone, "POST", h.URL+"/v1/qr/tickets/"+url.PathEscape(shown.ID)+"/confirm", erin.AccessToken, nil)
	mustStatus(t, "confirm", r, 200)

	b.waitJS(`#status data-state "logged-in"`, statusJS("logged-in"))
	b.waitJS("#user to be visible", `(() => { const u = document.getElementById("user"); return u.offsetParent !== null && u.textContent.length > 0; })()`)
	if user := evalJS[string](b, "read #user", `document.getElementById("user").textContent`); !strings.Contains(user, "erin") {
		t.Fatalf("#user %q, want it to contain erin\n%s", user, b.report())
	}

	states := evalJS[[]string](b, "read the state history",
		`window.__states.concat([document.getElementById("status").dataset.state])`)
	scanned, loggedIn := -1, -1
	for i, s := range states {
		if s == "scanned" && scanned < 0 {
			scanned = i
		}
		if s == "logged-in" {
			loggedIn = i
		}
	}
	t.Logf("QR %s decoded from the page; #status went %q", decoded, states)
	if scanned < 0 || loggedIn < scanned || states[len(states)-1] != "logged-in" {
		t.Fatalf("#status data-state history %q: want scanned, then logged-in last", states)
	}
	// The redeem sent the device id the page keeps in localStorage: the
	// desktop's session lists it.
	device := evalJS[string](b, "read the device id", `localStorage.getItem("loginhub.device_id") || ""`)
	if len(device) < 22 || !authcore.ValidDeviceID(device) {
		t.Fatalf("localStorage loginhub.device_id = %q, want 22+ URL-safe characters", device)
	}
	r = call(t, phone, "GET", h.URL+"/v1/me/sessions", erin.AccessToken, nil)
	mustStatus(t, "GET /v1/me/sessions", r, 200)
	var list sessionsList
	r.decode(t, &list)
	found := false
	for _, s := range list.Sessions {
		found = found || s.Method == "qr" && s.DeviceID == device
	}
	if !found {
		t.Errorf("erin's sessions %+v: want a qr session of device %q", list.Sessions, device)
	}
	// The page was never reloaded: the recorder installed above still runs.
	b.noExceptions()
}

func TestBrowserQRRefreshesOnExpiry(t *testing.T) {
	zbar := requireZbarimg(t)
	h := startHub(t, map[string]string{"LOGINHUB_QR_TTL": "2s"})
	b := newBrowser(t)
	b.open(h, "/")

	b.waitJS("the first QR image to load", qrLoadedJS)
	first := evalJS[string](b, "read data-ticket-id", `document.getElementById("qr").dataset.ticketId`)
	if first == "" {
		t.Fatal("img#qr has no data-ticket-id")
	}
	// Mark this document: a page reload would drop the mark.
	b.do("mark the document", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))

	b.waitJS("a fresh QR code after expiry",
		fmt.Sprintf(`document.getElementById("qr").dataset.ticketId !== %s && %s`, jsString(first), qrLoadedJS),
		20*time.Second)
	shown, decoded := shownQR(b, zbar, func(id string) bool { return id != first })
	if decoded != shown.URL {
		t.Fatalf("the new QR image holds %q, #qr-url shows %q", decoded, shown.URL)
	}
	ticketOfQRURL(t, h, decoded)
	t.Logf("ticket %s replaced by %s; new QR decodes to %s", first, shown.ID, decoded)
	if !evalJS[bool](b, "check the document", `window.__sameDocument === true`) {
		t.Fatal("the page reloaded to get a new QR code")
	}
	if st := evalJS[string](b, "read #status", `document.getElementById("status").dataset.state`); st == "error" {
		t.Fatalf("#status is error after the refresh\n%s", b.report())
	}
	b.noExceptions()
}

func TestBrowserSandboxPhone(t *testing.T) {
	h := startHub(t, nil)
	desktop := newBrowser(t)
	desktop.open(h, "/")
	desktop.waitJS("the QR image to load", qrLoadedJS)
	qrURL := evalJS[string](desktop, "read #qr-url", `document.getElementById("qr-url").textContent`)
	ticket := ticketOfQRURL(t, h, qrURL)

	// The page's own link to the simulator carries the same ticket.
	desktop.waitJS("#sandbox-link to be visible", `document.getElementById("sandbox-link").offsetParent !== null`)
	href := evalJS[string](desktop, "read #sandbox-link", `document.getElementById("sandbox-link").href`)
	if u, err := url.Parse(href); err != nil || u.Path != "/sandbox/phone" || u.Query().Get("ticket") != ticket {
		t.Errorf("#sandbox-link %q, want /sandbox/phone?ticket=%s", href, ticket)
	}

	phone := desktop.newTab()
	phone.open(h, "/sandbox/phone?ticket="+url.QueryEscape(ticket)+"&user=frank")
	// Logged in and scanned by itself; the requester must be on screen
	// before anyone confirms.
	phone.waitJS("#requester to show the requester IP 127.0.0.1", `(() => {
  const box = document.getElementById("requester");
  return box.offsetParent !== null && document.getElementById("req-ip").textContent === "127.0.0.1";
})()`)
	ua := evalJS[string](phone, "read #req-user-agent", `document.getElementById("req-user-agent").textContent`)
	if !strings.Contains(ua, "Chrome") {
		t.Errorf("#req-user-agent %q, want the desktop browser's user agent", ua)
	}
	if me := evalJS[string](phone, "read #me", `document.getElementById("me").textContent`); !strings.Contains(me, "frank") {
		t.Errorf("#me %q, want it to name frank", me)
	}
	desktop.waitJS(`desktop #status data-state "scanned"`, statusJS("scanned"))

	phone.do("click #confirm", chromedp.Click(chromedp.CSS("#confirm")))
	phone.waitJS(`#result to contain "confirmed"`, `document.getElementById("result").textContent.includes("confirmed")`)
	if e := evalJS[string](phone, "read #error", `document.getElementById("error").textContent`); e != "" {
		t.Errorf("phone #error %q after confirm", e)
	}

	desktop.waitJS(`desktop #status data-state "logged-in"`, statusJS("logged-in"))
	if user := evalJS[string](desktop, "read #user", `document.getElementById("user").textContent`); !strings.Contains(user, "frank") {
		t.Fatalf("#user %q, want it to contain frank\n%s", user, desktop.report())
	}
	desktop.noExceptions()
	phone.noExceptions()
}

// TestBrowserSandboxPhoneSMS: the phone simulator's SMS tab sends a code,
// reads it from the sandbox's inbox, logs in with it and scans as that
// user.
func TestBrowserSandboxPhoneSMS(t *testing.T) {
	h := startHub(t, nil)
	desktop := newBrowser(t)
	desktop.open(h, "/")
	desktop.waitJS("the QR image to load", qrLoadedJS)
	qrURL := evalJS[string](desktop, "read #qr-url", `document.getElementById("qr-url").textContent`)

	phone := desktop.newTab()
	phone.open(h, "/sandbox/phone")
	phone.do("open the SMS tab", chromedp.Click(chromedp.CSS("#tab-sms")))
	phone.waitJS("#pane-sms to show", `document.getElementById("pane-sms").offsetParent !== null`)
	phone.do("send a code", chromedp.Click(chromedp.CSS("#sms-send")))
	phone.waitJS("#sms-code to be filled from the inbox", `/^[0-9]{6}$/.test(document.getElementById("sms-code").value)`)
	phone.do("log in", chromedp.Click(chromedp.CSS("#sms-login")))
	phone.waitJS(`#me to show the masked number`, `document.getElementById("me").textContent.includes("+86 138****8000")`)

	phone.do("enter the QR URL", chromedp.SetValue(chromedp.CSS("#qr"), qrURL))
	phone.do("scan", chromedp.Click(chromedp.CSS("#scan")))
	phone.waitJS("#requester to show", `document.getElementById("requester").offsetParent !== null`)
	phone.do("confirm", chromedp.Click(chromedp.CSS("#confirm")))
	phone.waitJS(`#result to contain "confirmed"`, `document.getElementById("result").textContent.includes("confirmed")`)
	if e := evalJS[string](phone, "read #error", `document.getElementById("error").textContent`); e != "" {
		t.Errorf("phone #error %q", e)
	}
	desktop.waitJS(`desktop #status data-state "logged-in"`, statusJS("logged-in"))
	if user := evalJS[string](desktop, "read #user", `document.getElementById("user").textContent`); !strings.Contains(user, authcore.DefaultPhoneNickname) {
		t.Errorf("#user %q, want the SMS user's %q", user, authcore.DefaultPhoneNickname)
	}
	desktop.noExceptions()
	phone.noExceptions()
}

// qqButton is the demo page's QQ button.
const qqButton = `button.provider[data-provider="qq"]`

// consentJS is true when the page is the consent form of the sandbox's
// provider (route name: "qq", "weibo").
func consentJS(provider string) string {
	return fmt.Sprintf(`location.pathname.startsWith(%s) && document.querySelector('form input[name="user"]') !== null`,
		jsString("/sandbox/"+provider+"/"))
}

// popup runs action, which must make the tab open a popup, and returns
// the popup, attached. Closing the popup is left to its page; the test's
// end only detaches from it.
func (b *browserTab) popup(what string, action chromedp.Action[chromedp.Void]) *browserTab {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	opened := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool { return info.Type == "page" })
	b.do(what, action)
	var id target.ID
	select {
	case id = <-opened:
	case <-ctx.Done():
	}
	if id == "" {
		b.t.Fatalf("%s: no popup opened within %v\n%s", what, browserWait, b.report())
	}
	pctx, pcancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(id), chromedp.WithDetachOnCancel())
	b.t.Cleanup(pcancel)
	if err := chromedp.Do(pctx); err != nil {
		b.t.Fatalf("attaching to the popup: %v", err)
	}
	p := startTab(b.t, pctx)
	p.hub = b.hub
	return p
}

// allowConsent answers the sandbox QQ's consent page as the sandbox user
// name: types the name and presses Allow, as a person does.
func (b *browserTab) allowConsent(name string) {
	b.t.Helper()
	b.waitJS("the sandbox QQ consent page", consentJS("qq"))
	b.do("allow as "+name,
		chromedp.SendKeys(chromedp.CSS(`form input[name="user"]`), name),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]:not([name])`)),
	)
}

// qqSession logs the sandbox user name in through QQ without a browser
// (the hub's API, the consent page answered by browsertest) and returns
// the session: the user the hub makes of name's QQ identity.
func qqSession(t *testing.T, h *testHub, name string) authcore.Session {
	t.Helper()
	c := client("")
	nt := createTicket(t, c, h, "")
	r := call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/oauth/qq", nt.WatchSecret, nil)
	mustStatus(t, "POST …/oauth/qq", r, 200)
	var started struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.decode(t, &started)
	mustStatus(t, "qq callback", callback(t, h, "qq", browsertest.Login(t, started.AuthorizeURL, name)), 200)
	r = call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil)
	mustStatus(t, "redeem", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

// loggedInWithQQ checks that the desktop page says it is logged in as
// name's QQ nickname, and that the hub agrees: name's QQ user has a qq
// session of this browser's device.
func loggedInWithQQ(t *testing.T, b *browserTab, h *testHub, name string) {
	t.Helper()
	b.waitJS(`#status data-state "logged-in"`, statusJS("logged-in"))
	nickname := name + " (sandbox)" // the QQ fake's nickname for name
	if txt := evalJS[string](b, "read #status", `document.getElementById("status").textContent`); !strings.HasPrefix(txt, "Logged in as "+nickname+" ") {
		t.Errorf("#status %q, want Logged in as %s", txt, nickname)
	}
	if user := evalJS[string](b, "read #user", `document.getElementById("user").textContent`); user != nickname {
		t.Errorf("#user %q, want %q", user, nickname)
	}
	device := evalJS[string](b, "read the device id", `localStorage.getItem("loginhub.device_id") || ""`)
	s := qqSession(t, h, name)
	r := call(t, client(""), "GET", h.URL+"/v1/me/sessions", s.AccessToken, nil)
	mustStatus(t, "GET /v1/me/sessions", r, 200)
	var list sessionsList
	r.decode(t, &list)
	found := false
	for _, si := range list.Sessions {
		// The desktop's session is its QQ login's, not a scan's.
		found = found || si.Method == "qq" && si.DeviceID == device
	}
	if device == "" || !found {
		t.Errorf("%s's QQ user has sessions %+v: want a qq session of the page's device %q", name, list.Sessions, device)
	}
}

// TestBrowserProviderLogin: the demo page's QQ button logs in through the
// sandbox's QQ consent page, in a popup that closes itself and, where
// popups are blocked, by taking the page to the provider and back.
func TestBrowserProviderLogin(t *testing.T) {
	t.Run("popup", testBrowserProviderPopup)
	t.Run("redirect", testBrowserProviderRedirect)
	t.Run("redirect denied", testBrowserProviderRedirectDenied)
}

func testBrowserProviderPopup(t *testing.T) {
	h := startHub(t, nil)
	b := newBrowser(t)
	b.open(h, "/")
	b.waitJS("the QR image to load", qrLoadedJS)
	b.waitJS("the QQ button", fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(qqButton)))
	b.do("mark the document", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))

	popup := b.popup("click the QQ button", chromedp.Click(chromedp.CSS(qqButton)))
	popup.allowConsent("grace")
	// The callback's page closes the popup it is in.
	closed, err := chromedp.Detached(popup.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatalf("the popup did not close itself within %v\n%s", browserWait, popup.report())
	}

	loggedInWithQQ(t, b, h, "grace")
	if !evalJS[bool](b, "check the document", `window.__sameDocument === true`) {
		t.Error("the page reloaded: a popup login must leave it in place")
	}
	b.noExceptions()
	popup.noExceptions()
}

func testBrowserProviderRedirect(t *testing.T) {
	h := startHub(t, nil)
	b := newBrowser(t)
	// Headless Chromium blocks no pop-up, whatever its settings, so the
	// page's demo switch takes the withProvider path that blocked pop-ups
	// take: {redirect: true}.
	const page = "/?provider_redirect=1"
	b.open(h, page)
	b.waitJS("the QR image to load", qrLoadedJS)
	ticketID := evalJS[string](b, "read data-ticket-id", `document.getElementById("qr").dataset.ticketId`)

	b.do("click the QQ button", chromedp.Click(chromedp.CSS(qqButton)))
	// The page itself goes to the provider…
	b.allowConsent("heidi")
	// …and comes back to the demo page, which finishes the login it left:
	// the same ticket, redeemed with the DPoP key kept in IndexedDB (the
	// ticket is bound to it, so a redeem without it is refused).
	b.waitJS("the demo page again", fmt.Sprintf(`location.href === %s && document.readyState === "complete"`, jsString(h.URL+page)))
	loggedInWithQQ(t, b, h, "heidi")
	if id := evalJS[string](b, "read data-ticket-id", `document.getElementById("qr").dataset.ticketId`); id != ticketID {
		t.Errorf("logged in with ticket %q, want the one the page left with, %q", id, ticketID)
	}
	left := browserRun(b, "list what the login kept", chromedp.Evaluate[[]string](`(async () => {
  const kept = Object.keys(sessionStorage).filter(k => k.startsWith("loginhub."));
  const db = await new Promise((ok, fail) => { const r = indexedDB.open("loginhub", 1); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const keys = await new Promise((ok, fail) => { const r = db.transaction("keys").objectStore("keys").getAllKeys(); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  db.close();
  return kept.concat(keys.map(String));
})()`, chromedp.EvalAwaitPromise))
	if len(left) > 0 {
		t.Errorf("after the login the page still keeps %q: the ticket and key must be forgotten", left)
	}
	b.noExceptions()
}

// testBrowserProviderRedirectDenied: a refusal on the provider's page,
// in the page's own tab, leaves a way back to the page, which still has
// its ticket: another try there logs in. The refusal is Weibo's: QQ's PC
// page sends no refusal back, it only closes its window (as the fake
// does), so a QQ refusal in the page's own tab ends at QQ.
func testBrowserProviderRedirectDenied(t *testing.T) {
	h := startHub(t, nil)
	b := newBrowser(t)
	const page = "/?provider_redirect=1"
	b.open(h, page)
	b.waitJS("the QR image to load", qrLoadedJS)
	ticketID := evalJS[string](b, "read data-ticket-id", `document.getElementById("qr").dataset.ticketId`)

	b.do("click the Weibo button", chromedp.Click(chromedp.CSS(`button.provider[data-provider="weibo"]`)))
	b.waitJS("the sandbox Weibo consent page", consentJS("weibo"))
	b.do("deny", chromedp.Click(chromedp.CSS(`form button[name="deny"]`)))
	// The hub's callback says why, and links back to where the login began.
	b.waitJS("the callback's refusal", `location.pathname === "/v1/oauth/weibo/callback" &&
  document.getElementById("oauth-done") !== null && document.readyState === "complete"`)
	if ok := evalJS[string](b, "read data-ok", `document.getElementById("oauth-done").dataset.ok`); ok != "false" {
		t.Fatalf("callback page data-ok=%q after a refusal\n%s", ok, b.report())
	}
	back := evalJS[string](b, "read the link back", `(document.querySelector("a#back") || {}).href || ""`)
	if back != h.URL+page {
		t.Fatalf("the refusal page links back to %q, want %s\n%s", back, h.URL+page, b.report())
	}
	b.do("go back", chromedp.Click(chromedp.CSS("a#back")))
	b.waitJS("the demo page again", fmt.Sprintf(`location.href === %s && document.readyState === "complete"`, jsString(h.URL+page)))
	// Still the ticket it left with, waiting: the refusal did not touch it.
	b.waitJS(`#status data-state "pending"`, statusJS("pending"))
	if id := evalJS[string](b, "read data-ticket-id", `document.getElementById("qr").dataset.ticketId`); id != ticketID {
		t.Errorf("back with ticket %q, want the one the page left with, %q", id, ticketID)
	}

	b.do("click the QQ button", chromedp.Click(chromedp.CSS(qqButton)))
	b.allowConsent("ivan")
	b.waitJS("the demo page again", fmt.Sprintf(`location.href === %s && document.readyState === "complete"`, jsString(h.URL+page)))
	loggedInWithQQ(t, b, h, "ivan")
	b.noExceptions()
}

// TestBrowserSandboxPhoneCarrier: the phone simulator's one-click tab logs
// the SIM's number in through the sandbox's carrier; when the carrier
// fails, it moves to the SMS tab with the number filled in, and the SMS
// login works.
func TestBrowserSandboxPhoneCarrier(t *testing.T) {
	h := startHub(t, nil)
	phone := newBrowser(t)
	phone.open(h, "/sandbox/phone")
	phone.do("open the one-click tab", chromedp.Click(chromedp.CSS("#tab-carrier")))
	phone.waitJS("#pane-carrier to show", `document.getElementById("pane-carrier").offsetParent !== null`)
	phone.do("pick Unicom", chromedp.SetValue(chromedp.CSS("#carrier"), "cucc"))
	phone.do("one-click login", chromedp.Click(chromedp.CSS("#carrier-login")))
	phone.waitJS(`#me to show the masked number`, `document.getElementById("me").textContent.includes("+86 138****8000")`)

	phone.do("a failing carrier", chromedp.SetValue(chromedp.CSS("#carrier-fail"), "network"))
	phone.do("one-click login", chromedp.Click(chromedp.CSS("#carrier-login")))
	phone.waitJS("the SMS tab to show", `document.getElementById("pane-sms").offsetParent !== null`)
	if got := evalJS[string](phone, "read #sms-phone", `document.getElementById("sms-phone").value`); got != "13800138000" {
		t.Errorf("#sms-phone %q after the fallback, want the SIM's number", got)
	}
	if e := evalJS[string](phone, "read #error", `document.getElementById("error").textContent`); e != "" {
		t.Errorf("the fallback shows an error: %q", e)
	}
	phone.do("send a code", chromedp.Click(chromedp.CSS("#sms-send")))
	phone.waitJS("#sms-code to be filled from the inbox", `/^[0-9]{6}$/.test(document.getElementById("sms-code").value)`)
	phone.do("log in", chromedp.Click(chromedp.CSS("#sms-login")))
	phone.waitJS(`#me to show the number after the SMS login`, `document.getElementById("me").textContent.includes("+86 138****8000")`)
	phone.noExceptions()
}

// TestBrowserClientModule: a page without a bundler imports the client as
// an ES module from the hub (GET /loginhub.mjs, which imports
// ./loginhub.js): the exports are loginhub.js's object, and a login
// started through them gets its first QR code.
func TestBrowserClientModule(t *testing.T) {
	h := startHub(t, nil)
	b := newBrowser(t)
	b.open(h, "/")
	got := browserRun(b, "import /loginhub.mjs and start a login", chromedp.Evaluate[[]string](`(async () => {
  const m = await import("/loginhub.mjs");
  const id = await new Promise((ok, fail) => {
    const login = m.start({ onQR: (q) => { login.stop(); ok(q.id); }, onError: (e) => fail(e) });
  });
  return [typeof m.start, String(m.default === window.LoginHub), String(m.Error === m.LoginHubError),
          String(new m.Error("network") instanceof m.default.Error), String(id.length > 0)];
})()`, chromedp.EvalAwaitPromise))
	if want := []string{"function", "true", "true", "true", "true"}; !slices.Equal(got, want) {
		t.Errorf("module check: got %q, want %q", got, want)
	}
	b.noExceptions()
}
