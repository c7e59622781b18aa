package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The element ids below are read by browser tests and documented for
// integrators: renaming one is a breaking change.
func TestStaticFiles(t *testing.T) {
	tests := []struct {
		name string
		want []string // substrings the file must contain
	}{
		{IndexPage, []string{
			`<script src="/loginhub.js">`, `LoginHub.start(`,
			`id="qr"`, `id="status"`, `id="user"`, `id="qr-url"`, `id="sandbox-link"`,
			`dataset.ticketId`, `/sandbox/wechat/app`,
		}},
		{ClientScript, []string{`root.LoginHub = LoginHub`, `module.exports = LoginHub`, `LoginHub.start(`}},
		{ClientModule, []string{`from "./loginhub.js"`, `export const start`}},
		{PhonePage, []string{
			`id="user"`, `id="login"`, `id="qr"`, `id="scan"`, `id="requester"`,
			`id="confirm"`, `id="cancel"`, `id="result"`, `id="error"`,
			`/sandbox/wechat/wx.login`, `/v1/wx/login`, `/v1/qr/scan`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := fs.ReadFile(Static(), tt.name)
			if err != nil {
				t.Fatalf("Static() lacks %s: %v", tt.name, err)
			}
			for _, w := range tt.want {
				if !bytes.Contains(b, []byte(w)) {
					t.Errorf("%s does not contain %q", tt.name, w)
				}
			}
		})
	}
}

// No page or script may write to the console: it is where secrets leak.
func TestStaticNoConsoleLogging(t *testing.T) {
	for _, name := range []string{IndexPage, ClientScript, ClientModule, PhonePage} {
		b, err := fs.ReadFile(Static(), name)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("console.")); i >= 0 {
			line := bytes.Count(b[:i], []byte("\n")) + 1
			// The usage example in the client's header comment is not code.
			if name == ClientScript && bytes.HasPrefix(bytes.TrimSpace(lineAt(b, i)), []byte("*")) {
				continue
			}
			t.Errorf("%s:%d uses console", name, line)
		}
	}
}

func lineAt(b []byte, i int) []byte {
	start := bytes.LastIndexByte(b[:i], '\n') + 1
	end := bytes.IndexByte(b[i:], '\n')
	if end < 0 {
		return b[start:]
	}
	return b[start : i+end]
}

func TestRenderLanding(t *testing.T) {
	const hostile = `"><script>alert(1)</script><a href="x`
	tests := []struct {
		name    string
		in      Landing
		want    []string
		notWant []string
	}{
		{
			name: "plain",
			in:   Landing{Ticket: "AbC_123-xyz"},
			want: []string{
				"Scan this code with WeChat to log in", "请使用微信扫描此二维码登录",
				"<code>AbC_123-xyz</code>",
			},
			notWant: []string{"/sandbox/phone", "phone simulator"},
		},
		{
			name: "sandbox",
			in:   Landing{Ticket: "AbC_123-xyz", SandboxPhoneURL: "/sandbox/phone?ticket=AbC_123-xyz"},
			want: []string{`href="/sandbox/phone?ticket=AbC_123-xyz"`, "phone simulator"},
		},
		{
			name: "hostile ticket",
			in: Landing{
				Ticket:          hostile,
				SandboxPhoneURL: "/sandbox/phone?ticket=" + hostile,
			},
			want: []string{
				"&lt;script&gt;alert(1)&lt;/script&gt;",
				`href="/sandbox/phone?ticket=%22%3e%3cscript%3ealert%281%29%3c/script%3e%3ca%20href=%22x"`,
			},
			notWant: []string{"<script>alert(1)", `"><a href="x`},
		},
		{
			name:    "script URL",
			in:      Landing{Ticket: "t", SandboxPhoneURL: "javascript:alert(1)"},
			want:    []string{`href="#ZgotmplZ"`},
			notWant: []string{"javascript:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderLanding(&buf, tt.in); err != nil {
				t.Fatalf("RenderLanding: %v", err)
			}
			got := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("page does not contain %q; got:\n%s", w, got)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("page contains %q; got:\n%s", nw, got)
				}
			}
		})
	}
}

func TestRenderLandingWriteError(t *testing.T) {
	want := errors.New("broken pipe")
	if got := RenderLanding(failWriter{want}, Landing{Ticket: "t"}); !errors.Is(got, want) {
		t.Errorf("RenderLanding to a failing writer = %v, want %v", got, want)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func nodePath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: skipping the JavaScript checks")
	}
	return p
}

func TestLoginHubJSSyntax(t *testing.T) {
	node := nodePath(t)
	for _, name := range []string{ClientScript, ClientModule} {
		out, err := exec.Command(node, "--check", "static/"+name).CombinedOutput()
		if err != nil {
			t.Errorf("node --check static/%s: %v\n%s", name, err, out)
		}
	}
}

// TestLoginHubJSFlow runs loginhub.js in Node against a fake hub that speaks
// API.md: the first ticket expires, the second is scanned and confirmed,
// then redeemed with a DPoP proof that the fake verifies.
func TestLoginHubJSFlow(t *testing.T) {
	node := nodePath(t)
	wsFlags, wsOK := nodeWebSocketFlags(node)

	tests := []struct {
		name      string
		mode      string // harness mode: "ws" (WebSocket first) or "poll"
		hub       hubKnobs
		wantState []string // id:state:version[:scanner], in order
		check     func(t *testing.T, h *fakeHub)
	}{
		{
			name: "websocket",
			mode: "ws",
			wantState: []string{
				"tk1:pending:1", "tk1:expired:2",
				"tk2:pending:1", "tk2:scanned:2:alice", "tk2:confirmed:3:alice",
			},
			check: func(t *testing.T, h *fakeHub) {
				if h.wsConnects != 1 {
					t.Errorf("WebSocket connects = %d, want 1 (one socket watches both tickets)", h.wsConnects)
				}
				if h.polls != 0 {
					t.Errorf("long polls = %d, want 0", h.polls)
				}
			},
		},
		{
			name: "websocket reconnect resumes with since",
			mode: "ws",
			hub:  hubKnobs{dropAfterScanned: true},
			wantState: []string{
				"tk1:pending:1", "tk1:expired:2",
				"tk2:pending:1", "tk2:scanned:2:alice", "tk2:confirmed:3:alice",
			},
			check: func(t *testing.T, h *fakeHub) {
				if h.wsConnects != 2 {
					t.Errorf("WebSocket connects = %d, want 2", h.wsConnects)
				}
				if want := "tk2@2"; !slices.Contains(h.watches, want) {
					t.Errorf("watches = %v, want one %s after the reconnect", h.watches, want)
				}
			},
		},
		{
			name: "long poll",
			mode: "poll",
			// The hub answers a poll with the current state, so "scanned"
			// is skipped: it was already superseded.
			wantState: []string{
				"tk1:pending:1", "tk1:expired:2",
				"tk2:pending:1", "tk2:confirmed:3:alice",
			},
			check: func(t *testing.T, h *fakeHub) {
				if h.wsConnects != 0 {
					t.Errorf("WebSocket connects = %d, want 0 with usePolling", h.wsConnects)
				}
			},
		},
		{
			name: "falls back to long poll after two failed connects",
			mode: "ws",
			hub:  hubKnobs{rejectWebSocket: true},
			wantState: []string{
				"tk1:pending:1", "tk1:expired:2",
				"tk2:pending:1", "tk2:confirmed:3:alice",
			},
			check: func(t *testing.T, h *fakeHub) {
				if h.wsConnects != 2 {
					t.Errorf("WebSocket connects = %d, want 2 before falling back", h.wsConnects)
				}
				if h.polls == 0 {
					t.Error("no long polls after the fallback")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode == "ws" && !wsOK {
				t.Skip("this node has no WebSocket client (needs Node 22, or 20.10+ with --experimental-websocket)")
			}
			h := &fakeHub{
				hubKnobs: tt.hub,
				t:        t,
				scenario: [][]string{{"pending", "expired"}, {"pending", "scanned", "confirmed"}},
				jtis:     map[string]bool{},
			}
			srv := httptest.NewServer(h.routes())
			defer srv.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append(slices.Clone(wsFlags), "testdata/client_harness.js", "static/"+ClientScript, srv.URL, tt.mode)
			cmd := exec.CommandContext(ctx, node, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if ctx.Err() != nil {
				t.Fatalf("node did not exit within 30 s (a timer or socket left open after stop?)\nstdout:\n%s\nstderr:\n%s", stdout, &stderr)
			}
			if err != nil {
				t.Fatalf("node: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, &stderr)
			}
			evs := parseEvents(t, stdout)

			var gotState, qrs, errs []string
			var login, exit *harnessEvent
			for i, ev := range evs {
				switch ev.Ev {
				case "state":
					s := fmt.Sprintf("%s:%s:%d", ev.ID, ev.State, ev.Version)
					if ev.Scanner != "" {
						s += ":" + ev.Scanner
					}
					gotState = append(gotState, s)
				case "qr":
					qrs = append(qrs, ev.ID)
					if want := srv.URL + "/v1/qr/tickets/" + ev.ID + "/qr.png"; ev.PNG != want {
						t.Errorf("png = %q, want %q", ev.PNG, want)
					}
					if want := srv.URL + "/v1/qr/tickets/" + ev.ID + "/qr.svg"; ev.SVG != want {
						t.Errorf("svg = %q, want %q", ev.SVG, want)
					}
					if want := fakePublicURL + "/s/signed-" + ev.ID; ev.QRURL != want || ev.Ticket != "signed-"+ev.ID {
						t.Errorf("qr_url, ticket = %q, %q, want %q, %q", ev.QRURL, ev.Ticket, want, "signed-"+ev.ID)
					}
				case "login":
					login = &evs[i]
				case "exit":
					exit = &evs[i]
				default:
					errs = append(errs, fmt.Sprintf("%+v", ev))
				}
			}
			if len(errs) > 0 {
				t.Errorf("unexpected events: %v\nstderr:\n%s", errs, &stderr)
			}
			if !slices.Equal(qrs, []string{"tk1", "tk2"}) {
				t.Errorf("QR codes shown = %v, want [tk1 tk2]", qrs)
			}
			if !slices.Equal(gotState, tt.wantState) {
				t.Errorf("states =\n  %v\nwant\n  %v", gotState, tt.wantState)
			}
			if login == nil || login.Nickname != "alice" || login.TokenType != "Bearer" {
				t.Errorf("login event = %+v, want alice's Bearer session", login)
			}
			if exit == nil {
				t.Error("no exit event")
			} else if len(exit.Console) > 0 {
				t.Errorf("loginhub.js called console.%v; it must not log", exit.Console)
			}

			h.mu.Lock()
			defer h.mu.Unlock()
			if h.redeems != 1 {
				t.Errorf("successful redeems = %d, want 1", h.redeems)
			}
			if len(h.jkts) != 2 || h.jkts[0] == "" || h.jkts[0] != h.jkts[1] {
				t.Errorf("dpop_jkt per ticket = %q, want the same non-empty thumbprint twice", h.jkts)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}

// nodeWebSocketFlags finds how this node provides a global WebSocket.
func nodeWebSocketFlags(node string) (flags []string, ok bool) {
	probe := "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
	for _, f := range [][]string{nil, {"--experimental-websocket"}} {
		if exec.Command(node, append(slices.Clone(f), "-e", probe)...).Run() == nil {
			return f, true
		}
	}
	return nil, false
}

type harnessEvent struct {
	Ev        string   `json:"ev"`
	ID        string   `json:"id"`
	State     string   `json:"state"`
	Version   int      `json:"version"`
	Scanner   string   `json:"scanner"`
	Ticket    string   `json:"ticket"`
	QRURL     string   `json:"qr_url"`
	PNG       string   `json:"png"`
	SVG       string   `json:"svg"`
	Nickname  string   `json:"nickname"`
	TokenType string   `json:"token_type"`
	Error     string   `json:"error"`
	Status    int      `json:"status"`
	Fatal     bool     `json:"fatal"`
	Console   []string `json:"console"`
}

func parseEvents(t *testing.T, out []byte) []harnessEvent {
	t.Helper()
	var evs []harnessEvent
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var ev harnessEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("harness output %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// fakePublicURL is the fake hub's LOGINHUB_PUBLIC_URL: deliberately not the
// address the client reaches it at, as behind a proxy.
const fakePublicURL = "https://login.example.com"

// fakeHub speaks the desktop half of API.md for scripted tickets: ticket i
// (tk1, tk2, ...) has already gone through scenario[i] when it is created,
// so a watcher with since=1 receives the rest at once.
type fakeHub struct {
	hubKnobs
	t        *testing.T
	scenario [][]string

	mu         sync.Mutex
	tickets    []*fakeTicket
	jkts       []string
	jtis       map[string]bool
	watches    []string // "id@since" per watch message
	wsConnects int
	polls      int
	redeems    int
}

// hubKnobs make a fakeHub misbehave as real deployments do.
type hubKnobs struct {
	rejectWebSocket  bool // answer /v1/ws with 403: every connect fails
	dropAfterScanned bool // close the first socket right after sending "scanned"
}

type fakeTicket struct {
	id, secret, jkt string
	trail           []string // trail[v-1] is the state at version v
}

func (h *fakeHub) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/qr/tickets", h.create)
	mux.HandleFunc("GET /v1/qr/tickets/{id}", h.status)
	mux.HandleFunc("POST /v1/qr/tickets/{id}/redeem", h.redeem)
	mux.HandleFunc("GET /v1/ws", h.ws)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

func (h *fakeHub) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DPoPJKT string `json:"dpop_jkt"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeErr(w, 400, "invalid_request", "bad JSON")
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.tickets)
	if n >= len(h.scenario) {
		writeErr(w, 429, "rate_limited", "the scenario has no more tickets")
		return
	}
	tk := &fakeTicket{
		id:     "tk" + strconv.Itoa(n+1),
		secret: rand.Text(),
		jkt:    body.DPoPJKT,
		trail:  h.scenario[n],
	}
	h.tickets = append(h.tickets, tk)
	h.jkts = append(h.jkts, body.DPoPJKT)
	exp := time.Now().Add(120 * time.Second).UTC()
	writeJSON(w, 201, map[string]any{
		"id": tk.id, "ticket": "signed-" + tk.id, "qr_url": fakePublicURL + "/s/signed-" + tk.id,
		"watch_secret": tk.secret, "expires_at": exp.Format(time.RFC3339),
		"ttl_seconds": 120, "version": 1, "state": "pending",
	})
}

// ticket returns the ticket id if secret is its watch secret. h.mu held.
func (h *fakeHub) ticket(id, secret string) *fakeTicket {
	for _, tk := range h.tickets {
		if tk.id == id && tk.secret == secret {
			return tk
		}
	}
	return nil
}

// stateAt is the state object of tk at version v. h.mu held.
func stateAt(tk *fakeTicket, v int) map[string]any {
	m := map[string]any{"id": tk.id, "version": v, "state": tk.trail[v-1], "expires_at": "2030-01-01T00:00:00Z"}
	if v > 1 && tk.trail[1] == "scanned" {
		m["scanner"] = map[string]string{"nickname": "alice", "avatar_url": ""}
	}
	return m
}

func (h *fakeHub) status(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.polls++
	tk := h.ticket(r.PathValue("id"), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if tk == nil {
		writeErr(w, 401, "unauthorized", "wrong watch secret")
		return
	}
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	if wait := r.URL.Query().Get("wait"); wait != "25" && wait != "0" {
		h.t.Errorf("poll wait = %q, want 25 (or 0 for an expiry check)", wait)
	}
	if since >= len(tk.trail) {
		// Nothing new will ever happen in this script; a real hub would
		// wait up to "wait" seconds first.
		h.t.Errorf("poll %s since=%d: the client should have stopped polling", tk.id, since)
	}
	writeJSON(w, 200, stateAt(tk, len(tk.trail)))
}

func (h *fakeHub) redeem(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tk := h.ticket(r.PathValue("id"), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if tk == nil {
		writeErr(w, 401, "unauthorized", "wrong watch secret")
		return
	}
	// As the hub does: htu is checked against the public URL, which the
	// client only knows from qr_url.
	if err := verifyDPoP(r.Header.Get("DPoP"), "POST", fakePublicURL+r.URL.Path, tk.jkt, h.jtis); err != nil {
		h.t.Errorf("DPoP proof rejected: %v", err)
		writeErr(w, 401, "unauthorized", "invalid DPoP proof")
		return
	}
	switch tk.trail[len(tk.trail)-1] {
	case "confirmed":
	case "redeemed":
		writeErr(w, 410, "expired", "already redeemed")
		return
	default:
		writeErr(w, 409, "conflict", "not confirmed")
		return
	}
	tk.trail = append(slices.Clone(tk.trail), "redeemed")
	h.redeems++
	writeJSON(w, 200, map[string]any{
		"access_token": "at-" + rand.Text(), "refresh_token": "rt-" + rand.Text(),
		"token_type": "Bearer", "expires_in": 1800,
		"user": map[string]string{"id": "u1", "nickname": "alice", "avatar_url": ""},
	})
}

func (h *fakeHub) ws(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.wsConnects++
	first := h.wsConnects == 1
	h.mu.Unlock()
	if h.rejectWebSocket {
		http.Error(w, "no WebSocket here", http.StatusForbidden)
		return
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		var msg struct {
			Op     string `json:"op"`
			ID     string `json:"id"`
			Secret string `json:"secret"`
			Since  int    `json:"since"`
		}
		if err := conn.ReadJSON(&msg); err != nil {
			return
		}
		if msg.Op != "watch" {
			continue
		}
		h.mu.Lock()
		h.watches = append(h.watches, fmt.Sprintf("%s@%d", msg.ID, msg.Since))
		tk := h.ticket(msg.ID, msg.Secret)
		var frames []map[string]any
		if tk != nil {
			for v := msg.Since + 1; v <= len(tk.trail); v++ {
				f := stateAt(tk, v)
				f["ev"] = "state"
				frames = append(frames, f)
			}
		}
		h.mu.Unlock()
		if tk == nil {
			conn.WriteJSON(map[string]string{"ev": "error", "id": msg.ID, "error": "unauthorized", "message": "wrong watch secret"})
			continue
		}
		for _, f := range frames {
			if err := conn.WriteJSON(f); err != nil {
				return
			}
			if h.dropAfterScanned && first && f["state"] == "scanned" {
				return // as a hub node going away mid-login
			}
		}
	}
}

// verifyDPoP is a small independent check of an RFC 9449 ES256 proof: the
// header with a public P-256 jwk only, the raw r||s signature, the RFC 7638
// thumbprint against jkt, the claims, and that the jti is new.
func verifyDPoP(proof, method, htu, jkt string, jtis map[string]bool) error {
	b64 := base64.RawURLEncoding.Strict()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a compact JWS: %d parts", len(parts))
	}
	var hdr struct {
		Typ string            `json:"typ"`
		Alg string            `json:"alg"`
		JWK map[string]string `json:"jwk"`
	}
	var claims struct {
		JTI string  `json:"jti"`
		HTM string  `json:"htm"`
		HTU string  `json:"htu"`
		IAT float64 `json:"iat"`
	}
	for i, v := range []any{&hdr, &claims} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("part %d: %v", i, err)
		}
	}
	if hdr.Typ != "dpop+jwt" || hdr.Alg != "ES256" {
		return fmt.Errorf("typ, alg = %q, %q", hdr.Typ, hdr.Alg)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range hdr.JWK {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"crv", "kty", "x", "y"}) || hdr.JWK["kty"] != "EC" || hdr.JWK["crv"] != "P-256" {
		return fmt.Errorf("jwk = %v, want exactly a public P-256 key", hdr.JWK)
	}
	x, errX := b64.DecodeString(hdr.JWK["x"])
	y, errY := b64.DecodeString(hdr.JWK["y"])
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return errors.New("bad jwk coordinates")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return fmt.Errorf("jwk: %v", err)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("signature: %d bytes, %v; want raw r||s", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("bad signature")
	}
	canon := `{"crv":"P-256","kty":"EC","x":"` + hdr.JWK["x"] + `","y":"` + hdr.JWK["y"] + `"}`
	sum := sha256.Sum256([]byte(canon))
	if got := b64.EncodeToString(sum[:]); got != jkt {
		return fmt.Errorf("thumbprint = %q, want dpop_jkt %q", got, jkt)
	}
	if claims.HTM != method || claims.HTU != htu {
		return fmt.Errorf("htm, htu = %q, %q, want %q, %q", claims.HTM, claims.HTU, method, htu)
	}
	if d := time.Since(time.Unix(int64(claims.IAT), 0)); d < -5*time.Second || d > 60*time.Second {
		return fmt.Errorf("iat is %v off", d)
	}
	if claims.JTI == "" || jtis[claims.JTI] {
		return fmt.Errorf("jti %q empty or reused", claims.JTI)
	}
	jtis[claims.JTI] = true
	return nil
}

// TestRenderPage: each page's inline scripts and styles carry the
// response's nonce (the Content-Security-Policy runs nothing else inline),
// and the sandbox banner shows when asked for, and only then.
func TestRenderPage(t *testing.T) {
	for _, name := range []string{IndexPage, PhonePage} {
		for _, banner := range []bool{false, true} {
			var buf bytes.Buffer
			if err := RenderPage(&buf, name, Page{Nonce: "n0nce_-", SandboxBanner: banner}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			page := buf.String()
			for _, tag := range regexp.MustCompile(`<(script|style)\b[^>]*>`).FindAllString(page, -1) {
				if !strings.Contains(tag, "src=") && !strings.Contains(tag, `nonce="n0nce_-"`) {
					t.Errorf("%s: %s without the nonce", name, tag)
				}
			}
			if got := strings.Contains(page, `id="sandbox-banner"`); got != banner {
				t.Errorf("%s: banner shown %v, want %v", name, got, banner)
			}
		}
	}
	var buf bytes.Buffer
	if err := RenderLanding(&buf, Landing{Ticket: "t", Nonce: "n0nce_-", SandboxBanner: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `<style nonce="n0nce_-">`) || !strings.Contains(buf.String(), `id="sandbox-banner"`) {
		t.Errorf("landing page without the nonce on its style or without the banner:\n%s", &buf)
	}
}
