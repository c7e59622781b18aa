package oauthsandbox

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// TB is the part of testing.TB that Start uses, restated so that the hub's
// binary does not link the testing package.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Fake is a fake provider: a handler that records the requests it could
// not route (Knobs does).
type Fake interface {
	http.Handler
	UnknownRequests() []string
}

// Start serves fake over real HTTP on a loopback port for the rest of test
// t and returns its base URL. When t ends the server is closed, and t fails
// if the fake was asked for a path it does not serve.
func Start(t TB, fake Fake) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oauthsandbox: listen: %v", err)
	}
	hs := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("oauthsandbox: serve: %v", err)
		}
		if got := fake.UnknownRequests(); len(got) != 0 {
			t.Errorf("the fake provider saw unknown requests %q", got)
		}
	})
	return "http://" + ln.Addr().String()
}
