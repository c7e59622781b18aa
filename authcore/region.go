package authcore

import (
	"net/netip"
)

// Regions names the region a client address is in, for the login
// history, the sessions list and risk control. An implementation reads a
// GeoIP database (the geoip package, LOGINHUB_GEOIP_DB); without one the
// core uses PrefixRegions. Region must be safe for concurrent use and fast
// (it runs on every login).
type Regions interface {
	// Region returns a short region name ("CN/Guangdong/Shenzhen"), or
	// "" when the address is unknown.
	Region(addr netip.Addr) string
}

// PrefixRegions is the region without a GeoIP database, as the contract
// says: the address's /16 for IPv4 (and IPv4-mapped IPv6), /32 for IPv6.
// Two logins from one ISP's neighbourhood share it; a different network
// does not.
type PrefixRegions struct{}

// Region implements Regions.
func (PrefixRegions) Region(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap()
	bits := 32
	if addr.Is4() {
		bits = 16
	}
	p, err := addr.WithZone("").Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
