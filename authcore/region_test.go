package authcore_test

import (
	"net/netip"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

func TestPrefixRegions(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"203.0.113.7", "203.0.0.0/16"},
		{"::ffff:203.0.113.7", "203.0.0.0/16"},
		{"2001:db8:1:2::7", "2001:db8::/32"},
		{"fe80::1%eth0", "fe80::/32"},
	} {
		if got := (authcore.PrefixRegions{}).Region(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Region(%s) = %q, want %q", c.addr, got, c.want)
		}
	}
	if got := (authcore.PrefixRegions{}).Region(netip.Addr{}); got != "" {
		t.Errorf("Region(invalid) = %q, want empty", got)
	}
}
