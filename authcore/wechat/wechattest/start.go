package wechattest

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// TB is the part of testing.TB that Start uses. It is restated here so
// that the hub's binary, which serves the fake as its sandbox, does not
// link the testing package.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Start serves srv over real HTTP on a loopback port for the rest of test t
// and returns its base URL. When t ends the server is closed, and t fails
// if srv was asked for a path it does not serve: a client calling a wrong
// URL must not pass a test by accident.
func Start(t TB, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("wechattest: listen: %v", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("wechattest: serve: %v", err)
		}
		if got := srv.UnknownRequests(); len(got) != 0 {
			t.Errorf("the fake WeChat saw unknown requests %q", got)
		}
	})
	return "http://" + ln.Addr().String()
}
