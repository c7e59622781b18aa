// Package geoip reads the GeoIP database LOGINHUB_GEOIP_DB names: a
// MaxMind GeoIP2/GeoLite2 City .mmdb or an ip2region .xdb. A DB names the
// region of a client address as "country/province/city" for the login
// history, the sessions list and risk control.
//
// An address the database does not know (a private network, a range
// missing from it) gets the prefix region (authcore.PrefixRegions: its /16
// or /32), so risk control still has something to compare.
package geoip

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/loginhub/loginhub/authcore"
)

// DB is an opened GeoIP database. It implements authcore.Regions and is
// safe for concurrent use; Close it when no lookup can run any more.
type DB struct {
	kind   string // "mmdb" or "xdb"
	detail string // the database type ("GeoLite2-City") or the xdb's IP version
	src    source
	cache  regionCache
}

// source is one database format: region returns "" for an unknown
// address, and key a number that is the same for two addresses with the
// same record (its offset in the file), so the region string is built once.
type source interface {
	lookup(addr netip.Addr) (key uint64, ok bool)
	region(key uint64) string
	Close() error
}

// Open opens the database at path, choosing the format by its content:
// an ip2region .xdb header, else a MaxMind DB (.mmdb).
func Open(path string) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	head := make([]byte, xdbHeaderLen)
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("geoip: read %s: %w", path, err)
	}
	var xdbErr error
	if looksLikeXDB(head[:n]) {
		x, err := openXDB(path)
		if err == nil {
			return &DB{kind: "xdb", detail: x.ipName(), src: x}, nil
		}
		xdbErr = err // an unlucky MaxMind file, or a broken xdb
	}
	m, err := openMMDB(path)
	if err != nil {
		if xdbErr != nil {
			return nil, fmt.Errorf("geoip: %s: %w", path, xdbErr)
		}
		return nil, fmt.Errorf("geoip: %s is neither an ip2region .xdb nor a MaxMind .mmdb: %w", path, err)
	}
	return &DB{kind: "mmdb", detail: m.databaseType(), src: m}, nil
}

// Kind is the format: "mmdb" (MaxMind) or "xdb" (ip2region).
func (d *DB) Kind() string { return d.kind }

// Detail is the MaxMind database type ("GeoLite2-City") or the xdb's IP
// version ("IPv4", "IPv6").
func (d *DB) Detail() string { return d.detail }

// Region implements authcore.Regions: "country/province/city" from the
// database (trailing unknown parts left out), or the address's prefix when
// the database does not know it.
func (d *DB) Region(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	if key, ok := d.src.lookup(addr.Unmap().WithZone("")); ok {
		r, cached := d.cache.get(key)
		if !cached {
			r = d.src.region(key)
			d.cache.put(key, r)
		}
		if r != "" {
			return r
		}
	}
	return authcore.PrefixRegions{}.Region(addr)
}

// Close releases the database (its memory map or buffer).
func (d *DB) Close() error { return d.src.Close() }

// cacheMax bounds the region cache: a City database has a few hundred
// thousand records, and logins come from far fewer places.
const cacheMax = 1 << 16

// regionCache maps a record's key to its region string, so a lookup after
// the first one for a place allocates nothing.
type regionCache struct {
	mu sync.RWMutex
	m  map[uint64]string
}

func (c *regionCache) get(key uint64) (string, bool) {
	c.mu.RLock()
	r, ok := c.m[key]
	c.mu.RUnlock()
	return r, ok
}

func (c *regionCache) put(key uint64, r string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[uint64]string)
	}
	if len(c.m) < cacheMax {
		c.m[key] = r
	}
	c.mu.Unlock()
}

// joinRegion joins country, province and city with "/", leaving out
// trailing empty parts; "" when the country is unknown.
func joinRegion(country, province, city string) string {
	if country == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(country) + len(province) + len(city) + 2)
	b.WriteString(country)
	if province != "" || city != "" {
		b.WriteByte('/')
		b.WriteString(province)
	}
	if city != "" {
		b.WriteByte('/')
		b.WriteString(city)
	}
	return b.String()
}
