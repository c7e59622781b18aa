// Package web holds the embedded pages and the JavaScript client that
// desktop integrators include: the demo page (GET /), loginhub.js
// (GET /loginhub.js, and as an ES module GET /loginhub.mjs), the sandbox
// phone simulator (GET /sandbox/phone) and the landing page shown when a QR
// URL is opened outside WeChat (GET /s/{ticket}).
//
// static/ is also the client's npm package, for front-end builds that
// import it: package.json (ESM + UMD, no build step) and the TypeScript
// declarations loginhub.d.ts. Those two are for builds, not browsers, so
// they are neither embedded nor served.
//
// The files are plain HTML, CSS and JavaScript: running the hub needs no
// build step, no npm and no CDN. The pages carry their scripts and styles
// inline; they are html/template templates (RenderPage), so that each
// response can carry its own Content-Security-Policy nonce on them, and a
// sandbox banner when the hub needs one.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"io"
	"io/fs"
)

// Names of the files in Static.
const (
	IndexPage    = "index.html"   // desktop demo page, served at GET /
	ClientScript = "loginhub.js"  // the JS client, served at GET /loginhub.js
	ClientModule = "loginhub.mjs" // the JS client as an ES module (it imports ./loginhub.js), served at GET /loginhub.mjs
	PhonePage    = "phone.html"   // sandbox phone simulator, served at GET /sandbox/phone
)

//go:embed static/index.html static/loginhub.js static/loginhub.mjs static/phone.html
var staticFiles embed.FS

// Static returns the static files, rooted so that IndexPage, ClientScript,
// ClientModule and PhonePage are at its top level. ClientScript and
// ClientModule are served as they are; IndexPage and PhonePage are
// templates, served through RenderPage.
// PhonePage belongs to the sandbox: serve it only when the sandbox routes
// exist.
func Static() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		// Only possible if the embed directive above changes.
		panic("web: " + err.Error())
	}
	return sub
}

// Page is what a page template (IndexPage, PhonePage) is rendered with.
type Page struct {
	// Nonce is this response's Content-Security-Policy nonce, set on the
	// page's inline <script> and <style>: the policy allows no other
	// inline code, so markup injected into a page cannot run.
	Nonce string
	// SandboxBanner shows a banner across the top of the page saying that
	// WeChat is emulated: set when the sandbox is on beyond loopback, so
	// a staging cluster is never taken for the real thing.
	SandboxBanner bool
	// Providers are the third-party logins the desktop page offers beside
	// the QR code, a button each.
	Providers []Provider
	// Authorize, on IndexPage, is the id of the OpenID Connect
	// authorization request the login completes: the page then hands the
	// session to the provider (POST /oauth2/authorize/complete) and
	// follows it back to the app, instead of showing the user.
	Authorize string
}

// Provider is a third-party login as a page offers it.
type Provider struct {
	Route string // as the API names it: "qq", "weibo", "wechat_web", an OIDC upstream's name
	Name  string // as people know it: "QQ"
}

// sandboxBanner is the banner every page shows when the sandbox is on
// beyond loopback; each page's own style places it.
const sandboxBanner = `{{define "sandbox-banner"}}<div id="sandbox-banner" class="sandbox-banner" role="note">` +
	`沙盒 · SANDBOX — 微信为模拟，任何人都能以任意沙盒用户登录 · WeChat is emulated: anyone can log in as any sandbox user</div>{{end}}`

// bannerStyle places the banner at the top of the viewport, above the
// page's centred card.
const bannerStyle = `.sandbox-banner { position: fixed; top: 0; left: 0; right: 0; z-index: 10; padding: 6px 12px;
  background: #ffb300; color: #1d1d1f; font: 600 13px/1.4 system-ui, sans-serif; text-align: center; }`

// cardMeta and cardStyle are the head and the look of the small pages
// (the landing page, the end of a provider login): one centred card.
const cardMeta = `<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
`

const cardStyle = `  :root { font-family: system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif;
          color: #1d1d1f; background: #f5f5f7; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; }
  main { background: #fff; border-radius: 16px; box-shadow: 0 8px 30px rgba(0,0,0,.08);
         padding: 32px; max-width: 360px; margin: 16px; text-align: center; }
  h1 { font-size: 20px; margin: 0 0 8px; }
  p { line-height: 1.5; margin: 8px 0; }
  .en { color: #6e6e73; }
`

// render writes what tmpl makes of data, or nothing if it fails, so that
// the caller can still send an error status.
func render(w io.Writer, tmpl *template.Template, name string, data any) error {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// pageTmpls holds IndexPage and PhonePage, parsed once; they are constant
// files, so a parse error is a build mistake that every test catches.
var pageTmpls = template.Must(template.Must(template.New("").Parse(sandboxBanner)).
	ParseFS(staticFiles, "static/"+IndexPage, "static/"+PhonePage))

// RenderPage writes the page called name (IndexPage or PhonePage). It
// writes nothing if rendering fails, so the caller can still send an
// error status. Setting headers is the caller's job.
func RenderPage(w io.Writer, name string, p Page) error {
	return render(w, pageTmpls, name, p)
}

// Landing is what the landing page for GET /s/{ticket} shows.
type Landing struct {
	// Ticket is the signed ticket from the URL path, as the client sent it;
	// RenderLanding escapes it.
	Ticket string
	// SandboxPhoneURL links to the phone simulator with the ticket filled
	// in (/sandbox/phone?ticket=<ticket>, built by the caller). Empty when
	// the hub is not in sandbox mode: the page then shows no link.
	SandboxPhoneURL string
	// SandboxBanner and Nonce: as Page's.
	SandboxBanner bool
	Nonce         string
}

// landingTmpl is parsed once; html/template escapes every value for its
// context (text, attribute, URL), so a hostile ticket cannot inject markup.
var landingTmpl = template.Must(template.New("landing").Parse(sandboxBanner + `<!doctype html>
<html lang="zh-CN">
<head>
` + cardMeta + `<title>请用微信扫码登录 · Scan with WeChat to log in</title>
<style nonce="{{.Nonce}}">
` + cardStyle + `  .sandbox { margin-top: 20px; padding-top: 16px; border-top: 1px solid #e5e5ea; }
  a { color: #07c160; font-weight: 600; }
  .ticket { margin-top: 20px; font-size: 12px; color: #6e6e73; }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
  ` + bannerStyle + `
</style>
</head>
<body>
{{- if .SandboxBanner}}
{{template "sandbox-banner"}}
{{- end}}
<main>
  <h1>请使用微信扫描此二维码登录</h1>
  <p class="en">Scan this code with WeChat to log in.</p>
  <p>这是一个登录二维码，需要在微信中打开：打开微信 → 扫一扫，扫描电脑屏幕上的二维码。</p>
  <p class="en">This link is a login QR code. Open WeChat, tap Scan, and scan the code shown on your computer screen.</p>
{{- if .SandboxPhoneURL}}
  <div class="sandbox">
    <p>沙盒模式 · Sandbox mode</p>
    <p><a href="{{.SandboxPhoneURL}}">打开手机模拟器 · Open the phone simulator</a></p>
  </div>
{{- end}}
  <p class="ticket">Ticket: <code>{{.Ticket}}</code></p>
</main>
</body>
</html>
`))

// RenderLanding writes the landing page for a QR URL opened outside WeChat.
// It writes nothing if rendering fails, so the caller can still send an
// error status. Setting headers (Content-Type text/html; charset=utf-8) is
// the caller's job.
func RenderLanding(w io.Writer, l Landing) error {
	return render(w, landingTmpl, "landing", l)
}

// OAuthDone is what the page at the end of a third-party login shows
// (GET /v1/oauth/{provider}/callback without a return_to).
type OAuthDone struct {
	Provider string // the provider's display name ("QQ")
	// OK: the login went through (the desktop's page, watching its ticket,
	// is logged in; this window closes itself) or the identity is linked.
	OK bool
	// Message says why it did not, in words safe to show.
	Message string
	// ReturnTo, when the login did not go through, is the page it began on
	// (its return_to: the page came here itself, not in a popup), linked
	// so that the user can go back and try again; "" for a popup, which is
	// told to close.
	ReturnTo string
	// SandboxBanner and Nonce: as Page's.
	SandboxBanner bool
	Nonce         string
}

// oauthDoneTmpl: html/template escapes the provider and the message.
var oauthDoneTmpl = template.Must(template.New("oauth-done").Parse(sandboxBanner + `<!doctype html>
<html lang="zh-CN">
<head>
` + cardMeta + `<title>{{if .OK}}登录成功 · Logged in{{else}}登录未完成 · Login not completed{{end}}</title>
<style nonce="{{.Nonce}}">
` + cardStyle + `  a { color: #07c160; font-weight: 600; }
  ` + bannerStyle + `
</style>
</head>
<body>
{{- if .SandboxBanner}}
{{template "sandbox-banner"}}
{{- end}}
<main id="oauth-done" data-ok="{{.OK}}">
{{- if .OK}}
  <h1>已通过 {{.Provider}} 登录</h1>
  <p class="en">Logged in with {{.Provider}}. You can close this window.</p>
{{- else}}
  <h1>{{.Provider}} 登录未完成</h1>
  <p class="en">The login with {{.Provider}} did not complete: <span id="reason">{{.Message}}</span></p>
  {{- if .ReturnTo}}
  <p><a id="back" href="{{.ReturnTo}}">返回原页面重试 · Back to try again</a></p>
  {{- else}}
  <p>请关闭此窗口，回到原页面重试。 · Close this window and try again from the page you came from.</p>
  {{- end}}
{{- end}}
</main>
{{- if .OK}}
<script nonce="{{.Nonce}}">
  // A popup closes itself; a window the user navigated keeps the message.
  if (window.opener) { window.close(); }
</script>
{{- end}}
</body>
</html>
`))

// RenderOAuthDone writes the page at the end of a third-party login. It
// writes nothing if rendering fails. Setting headers is the caller's job.
func RenderOAuthDone(w io.Writer, d OAuthDone) error {
	return render(w, oauthDoneTmpl, "oauth-done", d)
}
