package main

// Sandbox tests: the sandbox is on only by choice or on a first run, a
// deployment without WeChat credentials refuses to start, and a sandbox
// reachable from other machines says so everywhere.

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// TestSandboxSetting: LOGINHUB_SANDBOX=auto is on for a first run only
// (embedded store, loopback public URL, the derived one included); off and
// without credentials the hub refuses to start, naming the missing
// variables and LOGINHUB_SANDBOX=on.
func TestSandboxSetting(t *testing.T) {
	redis := map[string]string{"LOGINHUB_REDIS_URL": "redis://127.0.0.1:1", "LOGINHUB_TICKET_KEYS": sharedKeys(), "LOGINHUB_DATA_KEY": sharedDataKey()}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	creds := []string{"LOGINHUB_WECHAT_APPID", "wx0123456789abcdef", "LOGINHUB_WECHAT_SECRET", "s3cret"}
	cases := map[string]struct {
		env              map[string]string
		refused          bool // no credentials and the sandbox off
		sandbox, emulate bool
		beyondLoopback   bool
	}{
		"first run":                         {env: nil, sandbox: true, emulate: true},
		"first run on 127.0.0.1":            {env: with(nil, "LOGINHUB_ADDR", "127.0.0.1:9000"), sandbox: true, emulate: true},
		"first run on every interface":      {env: with(nil, "LOGINHUB_ADDR", "0.0.0.0:9000"), sandbox: true, emulate: true},
		"localhost public URL":              {env: with(nil, "LOGINHUB_PUBLIC_URL", "http://app.localhost:8080"), sandbox: true, emulate: true},
		"listening on a LAN address":        {env: with(nil, "LOGINHUB_ADDR", "10.1.2.3:8080"), refused: true},
		"public URL beyond loopback":        {env: with(nil, "LOGINHUB_PUBLIC_URL", "https://login.example.com"), refused: true},
		"Redis":                             {env: redis, refused: true},
		"Redis with credentials":            {env: with(redis, creds...)},
		"Redis, sandbox on":                 {env: with(redis, "LOGINHUB_SANDBOX", "on"), sandbox: true, emulate: true},
		"sandbox off on a first run":        {env: with(nil, "LOGINHUB_SANDBOX", "off"), refused: true},
		"sandbox on with credentials":       {env: with(nil, append(creds, "LOGINHUB_SANDBOX", "on")...), sandbox: true},
		"sandbox on beyond loopback":        {env: with(nil, "LOGINHUB_SANDBOX", "on", "LOGINHUB_PUBLIC_URL", "https://staging.example.com"), sandbox: true, emulate: true, beyondLoopback: true},
		"on with credentials, not loopback": {env: with(nil, append(creds, "LOGINHUB_SANDBOX", "on", "LOGINHUB_PUBLIC_URL", "https://staging.example.com")...), sandbox: true},
	}
	for name, tc := range cases {
		cfg, err := loadConfig(nil, func(k string) string { return tc.env[k] }, io.Discard)
		if tc.refused {
			if err == nil {
				t.Errorf("%s: accepted without WeChat credentials", name)
				continue
			}
			msg := err.Error()
			for _, want := range []string{"LOGINHUB_WECHAT_APPID", "LOGINHUB_WECHAT_SECRET", "LOGINHUB_SANDBOX=on"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: %q does not mention %s", name, msg, want)
				}
			}
			if !strings.HasPrefix(msg, "LOGINHUB_WECHAT_APPID") {
				t.Errorf("%s: %q does not start with the variable's name", name, msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if cfg.Sandbox() != tc.sandbox || cfg.EmulatedWeChat() != tc.emulate || cfg.SandboxBeyondLoopback() != tc.beyondLoopback {
			t.Errorf("%s: sandbox %v, emulated WeChat %v, beyond loopback %v; want %v, %v, %v", name,
				cfg.Sandbox(), cfg.EmulatedWeChat(), cfg.SandboxBeyondLoopback(), tc.sandbox, tc.emulate, tc.beyondLoopback)
		}
	}
	_, err := loadConfig(nil, func(k string) string { return map[string]string{"LOGINHUB_SANDBOX": "yes"}[k] }, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "LOGINHUB_SANDBOX") {
		t.Errorf("LOGINHUB_SANDBOX=yes: %v, want an error naming LOGINHUB_SANDBOX", err)
	}
}

// TestRedisWithoutCredentials is the acceptance of the finding: the real
// binary with LOGINHUB_REDIS_URL and no credentials exits non-zero naming
// the missing variables; with LOGINHUB_SANDBOX=on it starts and warns.
func TestRedisWithoutCredentials(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	env := append(os.Environ(), "LOGINHUB_ADDR=127.0.0.1:0", "LOGINHUB_REDIS_URL="+redis.URL,
		"LOGINHUB_TICKET_KEYS="+sharedKeys(), "LOGINHUB_DATA_KEY="+sharedDataKey(),
		"LOGINHUB_PUBLIC_URL="+clusterOrigin, "LOGINHUB_WECHAT_APPID=", "LOGINHUB_WECHAT_SECRET=", "LOGINHUB_SANDBOX=")
	cmd := exec.Command(hubBinary(t))
	cmd.Env = env
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the hub started without WeChat credentials on Redis:\n%s", out)
	}
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("exit %v, want non-zero; output:\n%s", err, out)
	}
	for _, want := range []string{"LOGINHUB_WECHAT_APPID", "LOGINHUB_WECHAT_SECRET", "LOGINHUB_SANDBOX=on"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not mention %s:\n%s", want, out)
		}
	}

	n := startNode(t, "staging", redis.URL, sharedKeys(), sharedDataKey(), "LOGINHUB_SANDBOX=on")
	if !n.logs.waitFor(5*time.Second, sandboxWarned) {
		t.Fatalf("no WARN log line about the sandbox:\n%s", n.logs)
	}
}

func sandboxWarned(logs string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var e struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Level == "WARN" && strings.Contains(e.Msg, "sandbox") {
			return true
		}
	}
	return false
}

// TestSandboxBanner: beyond loopback every page shows the sandbox banner
// and the log warns; on a first run neither.
func TestSandboxBanner(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"first run", nil, false},
		{"staging", map[string]string{"LOGINHUB_SANDBOX": "on", "LOGINHUB_PUBLIC_URL": "https://staging.example.com"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHub(t, tc.env)
			c := client("127.0.0.1")
			nt := createTicket(t, c, h, "")
			for _, path := range []string{"/", "/sandbox/phone", "/s/" + nt.Ticket} {
				r := call(t, c, "GET", h.URL+path, "", nil)
				mustStatus(t, path, r, 200)
				if got := strings.Contains(string(r.Body), `id="sandbox-banner"`); got != tc.want {
					t.Errorf("%s: banner shown %v, want %v", path, got, tc.want)
				}
			}
			if got := sandboxWarned(h.logs.String()); got != tc.want {
				t.Errorf("sandbox warning logged %v, want %v:\n%s", got, tc.want, h.logs)
			}
		})
	}
}

// TestMeMarksSandboxUsers: users who logged in through the emulated
// WeChat or emulated SMS carry "sandbox": true in /v1/me; users of a real
// WeChat do not.
func TestMeMarksSandboxUsers(t *testing.T) {
	me := func(h *testHub, token string) map[string]any {
		r := call(t, client(""), "GET", h.URL+"/v1/me", token, nil)
		mustStatus(t, "/v1/me", r, 200)
		var body struct{ User map[string]any }
		r.decode(t, &body)
		return body.User
	}
	sandbox := startHub(t, nil)
	if u := me(sandbox, phoneLogin(t, sandbox, "sandy").AccessToken); u["sandbox"] != true {
		t.Errorf("sandbox user %v, want \"sandbox\": true", u)
	}
	real := startWxHub(t)
	if u := me(real.testHub, real.login(t, "rita").AccessToken); u["sandbox"] != nil {
		t.Errorf("user of a real WeChat %v, want no sandbox mark", u)
	}
	// The same hub (a first run: the sandbox is on) emulates SMS.
	const number = "+8613800138000"
	mustStatus(t, "POST /v1/sms/code", sendCode(t, real.URL, number), 202)
	r := call(t, client(""), "POST", real.URL+"/v1/sms/login", "", map[string]string{"phone": number, "code": lastCode(t, real.URL, number)})
	mustStatus(t, "POST /v1/sms/login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	if u := me(real.testHub, s.AccessToken); u["sandbox"] != true {
		t.Errorf("user of an emulated SMS %v, want \"sandbox\": true", u)
	}
}

// TestSandboxOnWithCredentials: with real WeChat credentials WeChat is not
// emulated, sandbox on or not: its sandbox routes do not exist. SMS, which
// has no provider, still is.
func TestSandboxOnWithCredentials(t *testing.T) {
	fake := &wechattest.Server{}
	fakeURL := wechattest.Start(t, fake)
	appid, secret := fake.App()
	h := startHub(t, map[string]string{
		"LOGINHUB_SANDBOX": "on", "LOGINHUB_WECHAT_APPID": appid, "LOGINHUB_WECHAT_SECRET": secret, "LOGINHUB_WECHAT_BASE_URL": fakeURL,
	})
	c := client("")
	for _, path := range []string{"/sandbox/wechat/app", "/sandbox/phone"} {
		mustStatus(t, path, call(t, c, "GET", h.URL+path, "", nil), 404)
	}
	mustStatus(t, "/sandbox/sms", call(t, c, "GET", h.URL+"/sandbox/sms?phone=13800138000", "", nil), 200)
}
