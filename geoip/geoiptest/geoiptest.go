// Package geoiptest writes small MaxMind City databases for tests, so that
// chosen addresses (loopback ones too) land in chosen places.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Names is a MaxMind "names" map from language/name pairs:
// Names("en", "China", "zh-CN", "中国").
func Names(kv ...string) mmdbtype.Map {
	m := mmdbtype.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[mmdbtype.String(kv[i])] = mmdbtype.String(kv[i+1])
	}
	return m
}

// City is a City database record with English names: country (by ISO
// code and name), one subdivision (the province) and the city.
func City(iso, country, province, city string) mmdbtype.Map {
	return mmdbtype.Map{
		"country":      mmdbtype.Map{"iso_code": mmdbtype.String(iso), "names": Names("en", country)},
		"subdivisions": mmdbtype.Slice{mmdbtype.Map{"names": Names("en", province)}},
		"city":         mmdbtype.Map{"names": Names("en", city)},
	}
}

// WriteMMDB writes a GeoLite2-City database holding each network (a CIDR)
// with its record into a temporary directory of t and returns its path.
// Reserved networks (loopback, private) are allowed, so a test's loopback
// clients can be in two provinces.
func WriteMMDB(t testing.TB, networks map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range networks {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
