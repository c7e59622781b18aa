package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadyz: a down dependency the hub serves without (WeChat) keeps
// /readyz at 200 and names it; an unreachable store still makes it 503,
// degraded or not.
func TestReadyz(t *testing.T) {
	up, down := func() bool { return true }, func() bool { return false }
	storeOK := func(context.Context) error { return nil }
	storeDown := func(context.Context) error { return errors.New("redis: connection refused") }
	tests := []struct {
		name       string
		ready      func(context.Context) error
		deps       []Dependency
		wantStatus int
		wantBody   string
	}{
		{"all up", storeOK, []Dependency{{"wechat", up}}, 200, `{"status":"ready"}`},
		{"no degradable dependencies", storeOK, nil, 200, `{"status":"ready"}`},
		{"wechat down", storeOK, []Dependency{{"wechat", down}}, 200, `{"status":"degraded","degraded":["wechat"]}`},
		{"only the down ones, in order", storeOK, []Dependency{{"a", down}, {"wechat", up}, {"b", down}}, 200, `{"status":"degraded","degraded":["a","b"]}`},
		{"store down", storeDown, []Dependency{{"wechat", up}}, 503, `"error":"upstream_unavailable"`},
		{"store down and wechat down", storeDown, []Dependency{{"wechat", down}}, 503, `"error":"upstream_unavailable"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Deps{Logger: slog.New(slog.DiscardHandler), Ready: tt.ready, Degradable: tt.deps}
			w := httptest.NewRecorder()
			handleReadyz(d).ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			if got := strings.TrimSpace(w.Body.String()); w.Code != tt.wantStatus || !strings.Contains(got, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %s", w.Code, got, tt.wantStatus, tt.wantBody)
			}
		})
	}
}
