package wechattest

import "github.com/loginhub/loginhub/authcore/oauthsandbox"

// TB is the part of testing.TB that Start uses, restated (in oauthsandbox)
// so that the hub's binary, which serves the fake as its sandbox, does not
// link the testing package.
type TB = oauthsandbox.TB

// Start serves srv over real HTTP on a loopback port for the rest of test t
// and returns its base URL. When t ends the server is closed, and t fails
// if srv was asked for a path it does not serve: a client calling a wrong
// URL must not pass a test by accident.
func Start(t TB, srv *Server) string {
	t.Helper()
	return oauthsandbox.Start(t, srv)
}
