package geoip

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// mmdb is a MaxMind DB (GeoIP2/GeoLite2 City, or any database with the
// same country, subdivisions and city fields).
type mmdb struct {
	r *maxminddb.Reader
}

// mmdbRecord is the part of a City record a region needs.
type mmdbRecord struct {
	Country struct {
		ISOCode string    `maxminddb:"iso_code"`
		Names   mmdbNames `maxminddb:"names"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		Names mmdbNames `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names mmdbNames `maxminddb:"names"`
	} `maxminddb:"city"`
}

type mmdbNames struct {
	En   string `maxminddb:"en"`
	ZhCN string `maxminddb:"zh-CN"`
}

// name prefers the Chinese name, as the hub's users read it, else English.
func (n mmdbNames) name() string {
	if n.ZhCN != "" {
		return n.ZhCN
	}
	return n.En
}

func openMMDB(path string) (*mmdb, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, err
	}
	return &mmdb{r: r}, nil
}

func (m *mmdb) databaseType() string { return m.r.Metadata.DatabaseType }

func (m *mmdb) lookup(addr netip.Addr) (uint64, bool) {
	res := m.r.Lookup(addr)
	if res.Err() != nil || !res.Found() {
		return 0, false
	}
	return uint64(res.Offset()), true
}

func (m *mmdb) region(key uint64) string {
	var rec mmdbRecord
	if err := m.r.LookupOffset(uintptr(key)).Decode(&rec); err != nil {
		return ""
	}
	country := rec.Country.ISOCode
	if country == "" {
		country = rec.Country.Names.name()
	}
	var province string
	if len(rec.Subdivisions) > 0 {
		province = rec.Subdivisions[0].Names.name()
	}
	return joinRegion(country, province, rec.City.Names.name())
}

func (m *mmdb) Close() error {
	if err := m.r.Close(); err != nil {
		return fmt.Errorf("geoip: close: %w", err)
	}
	return nil
}
