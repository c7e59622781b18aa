package oauthsandbox_test

import (
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

func TestRedirectAllowed(t *testing.T) {
	registered := []string{"https://hub.example/cb"}
	for _, c := range []struct {
		registered []string
		uri        string
		want       bool
	}{
		{registered, "https://hub.example/cb", true},
		{registered, "https://hub.example/cb?x=1", false}, // exact
		{registered, "https://hub.example/cb/", false},
		{registered, "http://hub.example/cb", false},
		{nil, "http://localhost:8080/cb?x=1", true},
		{nil, "https://hub.example/cb", true},
		{nil, "https://hub.example/cb#frag", false},
		{nil, "javascript:alert(1)", false},
		{nil, "/relative", false},
		{nil, "", false},
	} {
		if got := oauthsandbox.RedirectAllowed(c.registered, c.uri); got != c.want {
			t.Errorf("RedirectAllowed(%q, %q) = %v, want %v", c.registered, c.uri, got, c.want)
		}
	}
}

func TestValidUserName(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"ann", true},
		{"安妮 {x}", true},
		{strings.Repeat("é", oauthsandbox.MaxUserName), true},
		{strings.Repeat("é", oauthsandbox.MaxUserName+1), false},
		{"", false},
		{"a\tb", false},
		{"\xff", false},
	} {
		if got := oauthsandbox.ValidUserName(c.name); got != c.want {
			t.Errorf("ValidUserName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
