package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestPageSecurityHeaders: every page sends a Content-Security-Policy that
// runs no inline script without this response's nonce, forbids framing,
// and carries the nonce on each of its inline scripts and styles; HSTS is
// sent when the public URL is https, and only then.
func TestPageSecurityHeaders(t *testing.T) {
	inline := regexp.MustCompile(`<(script|style)\b([^>]*)>`)
	for _, tc := range []struct {
		name string
		env  map[string]string
		hsts bool
	}{
		{"http", nil, false},
		{"https", map[string]string{"LOGINHUB_PUBLIC_URL": "https://login.example.com", "LOGINHUB_SANDBOX": "on"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHub(t, tc.env)
			c := client("127.0.0.1")
			nt := createTicket(t, c, h, "")
			seen := map[string]bool{}
			for _, path := range []string{"/", "/sandbox/phone", "/s/" + nt.Ticket, "/"} {
				r := call(t, c, "GET", h.URL+path, "", nil)
				mustStatus(t, path, r, 200)
				csp := r.Header.Get("Content-Security-Policy")
				m := regexp.MustCompile(`script-src [^;]*'nonce-([A-Za-z0-9+/=_-]{16,})'`).FindStringSubmatch(csp)
				if m == nil && path != "/s/"+nt.Ticket {
					t.Fatalf("%s: Content-Security-Policy %q has no script nonce", path, csp)
				}
				if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
					t.Errorf("%s: Content-Security-Policy %q: want frame-ancestors 'none' and no unsafe-inline or unsafe-eval", path, csp)
				}
				nonce := ""
				if m != nil {
					nonce = m[1]
					if seen[nonce] {
						t.Errorf("%s: nonce %s used twice", path, nonce)
					}
					seen[nonce] = true
				}
				for _, tag := range inline.FindAllStringSubmatch(string(r.Body), -1) {
					if strings.Contains(tag[2], "src=") {
						continue // a script from this origin: 'self'
					}
					if nonce == "" || !strings.Contains(tag[2], `nonce="`+nonce+`"`) {
						t.Errorf("%s: inline <%s%s> without this response's nonce %q", path, tag[1], tag[2], nonce)
					}
				}
				if got := r.Header.Get("Strict-Transport-Security") != ""; got != tc.hsts {
					t.Errorf("%s: Strict-Transport-Security sent %v, want %v", path, got, tc.hsts)
				}
			}
		})
	}
}
