package wechattest

import (
	"net/http/httptest"
	"testing"
)

// Start serves srv over real HTTP on a loopback port for the rest of test t
// and returns its base URL. When t ends the server is closed, and t fails
// if srv was asked for a path it does not serve: a client calling a wrong
// URL must not pass a test by accident.
func Start(t testing.TB, srv *Server) string {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if got := srv.UnknownRequests(); len(got) != 0 {
			t.Errorf("the fake WeChat saw unknown requests %q", got)
		}
	})
	return ts.URL
}
