package authcore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

// TestWxLoginProfile: the nickname a mini-program sends is stored without
// control and bidi characters (a desktop shows it as the scanner), and an
// avatar must be https (http only from a loopback host: the sandbox).
func TestWxLoginProfile(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	login := func(nickname, avatar string) (authcore.Session, error) {
		f.n++
		code := "profile" + strings.Repeat("x", f.n)
		f.wx.mu.Lock()
		f.wx.codes[code] = "o-profile"
		f.wx.mu.Unlock()
		return f.svc.WxLogin(ctx, authcore.WxLoginRequest{Code: code, Nickname: nickname, AvatarURL: avatar})
	}

	names := []struct{ in, want string }{
		{"Alice", "Alice"},
		{"\u202Eecila\u202C", "ecila"},                     // right-to-left override
		{"a\u2066b\u2069c\u200Fd\u061C", "abcd"},           // isolates and marks
		{"bell\x07\x1b[31mred\u0085", "bell[31mred"},       // C0, escape, C1
		{"  spaced\t\n", "spaced"},                         // trimmed
		{strings.Repeat("长", 64), strings.Repeat("长", 64)}, // the cap is in runes
	}
	for _, n := range names {
		s, err := login(n.in, "")
		if err != nil {
			t.Fatalf("login with nickname %q: %v", n.in, err)
		}
		if s.User.Nickname != n.want {
			t.Errorf("nickname %q stored as %q, want %q", n.in, s.User.Nickname, n.want)
		}
	}
	_, err := login(strings.Repeat("长", 65), "")
	wantKind(t, "65-rune nickname", err, authcore.KindInvalid)

	avatars := []struct {
		url string
		ok  bool
	}{
		{"https://thirdwx.qlogo.cn/mmopen/a/132", true},
		{"http://127.0.0.1:8080/sandbox/avatar.png", true},
		{"http://localhost/a.png", true},
		{"http://[::1]/a.png", true},
		{"http://evil.example/a.png", false},
		{"javascript:alert(1)", false},
		{"data:image/png;base64,AAAA", false},
		{"https:///no-host", false},
		{"https://user:pw@example.com/a.png", false},
		{"//example.com/a.png", false},
		{"https://example.com/" + strings.Repeat("a", 1100), false},
	}
	for _, a := range avatars {
		s, err := login("", a.url)
		switch {
		case a.ok && err != nil:
			t.Errorf("avatar %q refused: %v", a.url, err)
		case a.ok && s.User.AvatarURL != a.url:
			t.Errorf("avatar %q stored as %q", a.url, s.User.AvatarURL)
		case !a.ok:
			wantKind(t, "avatar "+a.url, err, authcore.KindInvalid)
		}
	}
}

func TestProviderAvatarURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"https://thirdwx.qlogo.cn/mmopen/x/132", "https://thirdwx.qlogo.cn/mmopen/x/132"},
		{"http://thirdqq.qlogo.cn/g?b=oidb&k=AB&s=100", "https://thirdqq.qlogo.cn/g?b=oidb&k=AB&s=100"},
		{"HTTP://tvax1.sinaimg.cn/crop/1", "https://tvax1.sinaimg.cn/crop/1"},
		{"http://127.0.0.1:8080/sandbox/a.png", "http://127.0.0.1:8080/sandbox/a.png"}, // the sandbox's own
		{"http://localhost/a.png", "http://localhost/a.png"},
		{"javascript:alert(1)", ""},
		{"ftp://example.com/a.png", ""},
		{"//example.com/a.png", ""},
		{"http://user:pw@example.com/a.png", ""},
		{"not a url", ""},
	} {
		if got := authcore.ProviderAvatarURL(c.in); got != c.want {
			t.Errorf("ProviderAvatarURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
