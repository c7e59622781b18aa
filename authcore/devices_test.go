package authcore_test

import (
	"net/netip"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

func TestMaskIP(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77":                  "203.0.113.*",
		"::ffff:203.0.113.77":           "203.0.113.*",
		"2001:db8:1:2:3:4:5:6":          "2001:db8:1:2::/64",
		"fe80::1%eth0":                  "fe80::/64",
		"2001:db8:1:2:ffff:ffff:1:abcd": "2001:db8:1:2::/64",
	} {
		if got := authcore.MaskIP(netip.MustParseAddr(in)); got != want {
			t.Errorf("MaskIP(%s) = %q, want %q", in, got, want)
		}
	}
	if got := authcore.MaskIP(netip.Addr{}); got != "" {
		t.Errorf("MaskIP(no address) = %q, want empty", got)
	}
}
