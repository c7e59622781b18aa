package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/handlers"
)

// oneUserWeChat is the WeChat port of a hub with one mini-program user:
// every wx.login code is theirs.
type oneUserWeChat struct{ authcore.WeChat }

func (oneUserWeChat) Code2Session(context.Context, string) (authcore.WeChatSession, error) {
	return authcore.WeChatSession{OpenID: "o-voice", SessionKey: "c2Vzc2lvbmtleTEyMzQ1Ng=="}, nil
}

// voiceprint is a voiceprint vendor behind the verifier port (amr "vbm",
// RFC 8176): it checks anyone, and a check passes once the test says so.
type voiceprint struct {
	mu     sync.Mutex
	passed map[string]bool // by verify_id
}

func (*voiceprint) Method() string { return "vbm" }

func (*voiceprint) Subject(s authcore.SessionRecord) (string, error) { return s.UserID, nil }

func (*voiceprint) Start(_ context.Context, ref, _, _, _ string) (authcore.FaceStart, error) {
	return authcore.FaceStart{VerifyID: "vp-" + ref, ExpiresIn: 5 * time.Minute}, nil
}

func (v *voiceprint) Check(_ context.Context, f authcore.FaceVerification) (authcore.FaceOutcome, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return authcore.FaceOutcome{Passed: v.passed[f.VerifyID], Finished: true, Reason: "not the enrolled voice"}, nil
}

func (*voiceprint) CheckResult(context.Context, string) (authcore.FaceOutcome, string, error) {
	return authcore.FaceOutcome{}, "", authcore.Errorf(authcore.KindInvalid, "no verify_result")
}

// TestStepUpOtherMethod: a voiceprint verifier plugs into a hub with no
// handler of its own: /v1/face/verify-id starts its check by name,
// /v1/face/result marks the session with amr vbm and step_ups.vbm, and
// GET /v1/me?require=vbm is 401 step_up_required (methods [vbm]) before
// and 200 after; a method no verifier grants is 400.
func TestStepUpOtherMethod(t *testing.T) {
	store := memstore.New(nil, nil)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	voice := &voiceprint{passed: map[string]bool{}}
	svc, err := authcore.NewService(authcore.Config{Store: store, Signer: signer, Vault: vault, WeChat: oneUserWeChat{},
		Verifiers: map[string]authcore.Verifier{"fake_voiceprint": voice}, PublicURL: "https://login.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.Routes(handlers.Deps{Logger: slog.New(slog.DiscardHandler), Auth: svc, Limiter: store}))
	defer srv.Close()
	call := func(method, path, token string, body any) (int, []byte) {
		t.Helper()
		var in io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			in = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, in)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	type facts struct {
		AMR     []string             `json:"amr"`
		FaceAt  *time.Time           `json:"face_at"`
		StepUps map[string]time.Time `json:"step_ups"`
	}

	code, body := call("POST", "/v1/wx/login", "", map[string]string{"code": "any"})
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if code != 200 || json.Unmarshal(body, &login) != nil || login.AccessToken == "" {
		t.Fatalf("wx.login: %d %s", code, body)
	}
	tok := login.AccessToken

	code, body = call("GET", "/v1/me?require=vbm&max_age=300", tok, nil)
	var refused struct {
		Error  string `json:"error"`
		StepUp struct {
			Methods []string `json:"methods"`
		} `json:"step_up"`
	}
	if json.Unmarshal(body, &refused); code != 401 || refused.Error != "step_up_required" || !slices.Equal(refused.StepUp.Methods, []string{"vbm"}) {
		t.Fatalf("require=vbm before a voiceprint check: %d %s, want 401 step_up_required, methods [vbm]", code, body)
	}
	if code, body := call("GET", "/v1/me?require=retina&max_age=300", tok, nil); code != 400 {
		t.Errorf("require=retina, which no verifier grants: %d %s, want 400", code, body)
	}

	code, body = call("POST", "/v1/face/verify-id", tok, map[string]string{"verifier": "fake_voiceprint", "name": "王美", "id_number": "110105194912310029"})
	var started struct {
		VerifyID string `json:"verify_id"`
	}
	if code != 200 || json.Unmarshal(body, &started) != nil || started.VerifyID == "" {
		t.Fatalf("start a voiceprint check: %d %s", code, body)
	}
	voice.mu.Lock()
	voice.passed[started.VerifyID] = true
	voice.mu.Unlock()
	code, body = call("POST", "/v1/face/result", tok, map[string]string{"verify_id": started.VerifyID})
	var passed struct {
		Passed  bool  `json:"passed"`
		Session facts `json:"session"`
	}
	if code != 200 || json.Unmarshal(body, &passed) != nil || !passed.Passed || !slices.Contains(passed.Session.AMR, "vbm") || passed.Session.StepUps["vbm"].IsZero() {
		t.Fatalf("a passed voiceprint check: %d %s, want passed, amr with vbm and step_ups.vbm", code, body)
	}

	code, body = call("GET", "/v1/me?require=vbm&max_age=300", tok, nil)
	var me struct {
		Session facts `json:"session"`
	}
	if code != 200 || json.Unmarshal(body, &me) != nil || !slices.Equal(me.Session.AMR, []string{"wx", "vbm"}) ||
		!me.Session.StepUps["vbm"].Equal(passed.Session.StepUps["vbm"]) || me.Session.FaceAt != nil {
		t.Fatalf("require=vbm after a voiceprint check: %d %s, want 200, amr [wx vbm], its step_ups.vbm, no face_at", code, body)
	}
}
