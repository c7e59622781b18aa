package oidc_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore/oidc"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseUpstreams(t *testing.T) {
	got, err := oidc.ParseUpstreams(env(map[string]string{
		"LOGINHUB_OIDC_UPSTREAMS":               " corp, my-idp.v2 ",
		"LOGINHUB_OIDC_CORP_ISSUER":             "https://sso.corp.example/realms/staff",
		"LOGINHUB_OIDC_CORP_CLIENT_ID":          "hub",
		"LOGINHUB_OIDC_CORP_CLIENT_SECRET":      "s1",
		"LOGINHUB_OIDC_CORP_SCOPES":             "openid profile, email",
		"LOGINHUB_OIDC_MY_IDP_V2_ISSUER":        "http://127.0.0.1:8081",
		"LOGINHUB_OIDC_MY_IDP_V2_CLIENT_ID":     "hub2",
		"LOGINHUB_OIDC_MY_IDP_V2_CLIENT_SECRET": "s2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []oidc.Config{
		{Name: "corp", Issuer: "https://sso.corp.example/realms/staff", ClientID: "hub", ClientSecret: "s1",
			Scopes: []string{"openid", "profile", "email"}},
		{Name: "my-idp.v2", Issuer: "http://127.0.0.1:8081", ClientID: "hub2", ClientSecret: "s2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got, err := oidc.ParseUpstreams(env(nil)); got != nil || err != nil {
		t.Fatalf("none configured: got %v, %v; want nothing", got, err)
	}
}

func TestParseUpstreamsErrors(t *testing.T) {
	ok := map[string]string{
		"LOGINHUB_OIDC_CORP_ISSUER":        "https://sso.corp.example",
		"LOGINHUB_OIDC_CORP_CLIENT_ID":     "hub",
		"LOGINHUB_OIDC_CORP_CLIENT_SECRET": "s1",
	}
	for _, tc := range []struct {
		name, upstreams, key, value string
		wantPrefix                  string
	}{
		{"upper case name", "Corp", "", "", "LOGINHUB_OIDC_UPSTREAMS: "},
		{"empty name", "corp,,x", "", "", "LOGINHUB_OIDC_UPSTREAMS: "},
		{"bad character", "co rp", "", "", "LOGINHUB_OIDC_UPSTREAMS: "},
		{"colon", "oidc:corp", "", "", "LOGINHUB_OIDC_UPSTREAMS: "},
		{"too long", strings.Repeat("a", 60), "", "", "LOGINHUB_OIDC_UPSTREAMS: "},
		{"duplicate", "corp,corp", "", "", "LOGINHUB_OIDC_UPSTREAMS: \"corp\" is listed twice"},
		{"same variables", "corp,a-b,a.b", "", "", "LOGINHUB_OIDC_UPSTREAMS: \"a-b\" and \"a.b\""},
		{"no issuer", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "", "LOGINHUB_OIDC_CORP_ISSUER: required"},
		{"no client id", "corp", "LOGINHUB_OIDC_CORP_CLIENT_ID", " ", "LOGINHUB_OIDC_CORP_CLIENT_ID: required"},
		{"no secret", "corp", "LOGINHUB_OIDC_CORP_CLIENT_SECRET", "", "LOGINHUB_OIDC_CORP_CLIENT_SECRET: required"},
		{"http issuer", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "http://sso.corp.example", "LOGINHUB_OIDC_CORP_ISSUER: "},
		{"no host", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "https:///realm", "LOGINHUB_OIDC_CORP_ISSUER: "},
		{"query", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "https://sso.corp.example?x=1", "LOGINHUB_OIDC_CORP_ISSUER: "},
		{"fragment", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "https://sso.corp.example#x", "LOGINHUB_OIDC_CORP_ISSUER: "},
		{"other scheme", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "ftp://sso.corp.example", "LOGINHUB_OIDC_CORP_ISSUER: "},
		{"http on a lookalike of loopback", "corp", "LOGINHUB_OIDC_CORP_ISSUER", "http://127.0.0.1.evil.example", "LOGINHUB_OIDC_CORP_ISSUER: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"LOGINHUB_OIDC_UPSTREAMS": tc.upstreams}
			for k, v := range ok {
				m[k] = v
			}
			if tc.key != "" {
				m[tc.key] = tc.value
			}
			_, err := oidc.ParseUpstreams(env(m))
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantPrefix) {
				t.Fatalf("got %v, want an error starting %q", err, tc.wantPrefix)
			}
			if strings.Contains(err.Error(), "s1") {
				t.Fatalf("the secret is in %q", err)
			}
		})
	}
}

func TestLoopbackIssuers(t *testing.T) {
	for _, iss := range []string{"http://localhost:9000/realms/x", "http://127.0.0.1", "http://[::1]:8080"} {
		_, err := oidc.ParseUpstreams(env(map[string]string{"LOGINHUB_OIDC_UPSTREAMS": "dev",
			"LOGINHUB_OIDC_DEV_ISSUER": iss, "LOGINHUB_OIDC_DEV_CLIENT_ID": "c", "LOGINHUB_OIDC_DEV_CLIENT_SECRET": "s"}))
		if err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
}
