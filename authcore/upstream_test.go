package authcore_test

import (
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

func TestValidBaseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"https://graph.qq.com", true},
		{"https://api.weibo.com/", true},
		{"http://127.0.0.1:8080/sandbox/wechat_web", true},
		{"", false},
		{"graph.qq.com", false},
		{"ftp://graph.qq.com", false},
		{"https://", false},
		{"https://graph.qq.com?fmt=json", false},
		{"https://graph.qq.com/?", false},
		{"https://open.weixin.qq.com#wechat_redirect", false},
		{"https://user:pw@api.weixin.qq.com", false},
		{"https://bad host", false},
	} {
		if got := authcore.ValidBaseURL(c.in); got != c.want {
			t.Errorf("ValidBaseURL(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
