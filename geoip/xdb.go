package geoip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// The ip2region xdb format (structure 2.0, IPv4 only, and 3.0, IPv4 or
// IPv6), as its project documents it; this reader is ours, as the
// project's Go binding is not served by the module proxy:
//
//	header        256 bytes: version u16 (2 or 3), index policy u16 (1 =
//	              vector), created at u32, first and last segment index
//	              pointers u32; 3.0 adds the IP version u16 (4 or 6) and the
//	              data pointer size u16 (4). All little-endian.
//	vector index  256×256 entries of 8 bytes, one per first two address
//	              bytes: pointers to its first and last segment index.
//	region data   the region strings, "country|area|province|city|ISP"
//	segment index sorted segments: start and end address (IPv4: u32
//	              little-endian; IPv6: 16 bytes big-endian), the region's
//	              length u16 and pointer u32.
const (
	xdbHeaderLen    = 256
	xdbVectorLen    = 256 * 256 * 8
	xdbVectorPolicy = 1
	xdbStructure20  = 2
	xdbStructure30  = 3
)

// xdb is a whole .xdb file in memory (about 11 MB for IPv4): read-only, so
// lookups need no lock.
type xdb struct {
	data    []byte
	ipBytes int // 4 or 16
	segSize uint32
}

// looksLikeXDB reports whether head starts like an xdb header.
func looksLikeXDB(head []byte) bool {
	if len(head) < 20 {
		return false
	}
	version := binary.LittleEndian.Uint16(head)
	policy := binary.LittleEndian.Uint16(head[2:])
	start := binary.LittleEndian.Uint32(head[8:])
	end := binary.LittleEndian.Uint32(head[12:])
	return (version == xdbStructure20 || version == xdbStructure30) && policy == xdbVectorPolicy &&
		start >= xdbHeaderLen+xdbVectorLen && end >= start
}

func openXDB(path string) (*xdb, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < xdbHeaderLen+xdbVectorLen {
		return nil, errors.New("xdb: too short")
	}
	x := &xdb{data: data, ipBytes: 4}
	if binary.LittleEndian.Uint16(data) == xdbStructure30 {
		switch ipv := binary.LittleEndian.Uint16(data[16:]); ipv {
		case 4:
		case 6:
			x.ipBytes = 16
		default:
			return nil, fmt.Errorf("xdb: unknown IP version %d", ipv)
		}
		if ptr := binary.LittleEndian.Uint16(data[18:]); ptr != 0 && ptr != 4 {
			return nil, fmt.Errorf("xdb: unsupported data pointer size %d", ptr)
		}
	}
	x.segSize = uint32(2*x.ipBytes + 6)
	start := binary.LittleEndian.Uint32(data[8:])
	end := binary.LittleEndian.Uint32(data[12:])
	if (end-start)%x.segSize != 0 || uint64(end)+uint64(x.segSize) > uint64(len(data)) {
		return nil, errors.New("xdb: segment index out of the file")
	}
	return x, nil
}

func (x *xdb) ipName() string {
	if x.ipBytes == 16 {
		return "IPv6"
	}
	return "IPv4"
}

// lookup finds the segment holding addr; the key is its region's pointer
// and length.
func (x *xdb) lookup(addr netip.Addr) (uint64, bool) {
	var ip [16]byte
	switch {
	case x.ipBytes == 4 && addr.Is4():
		a := addr.As4()
		copy(ip[:], a[:])
	case x.ipBytes == 16 && addr.Is6():
		ip = addr.As16()
	default:
		return 0, false
	}
	n := x.ipBytes
	v := xdbHeaderLen + (int(ip[0])*256+int(ip[1]))*8
	sPtr := binary.LittleEndian.Uint32(x.data[v:])
	ePtr := binary.LittleEndian.Uint32(x.data[v+4:])
	if sPtr == 0 || ePtr < sPtr {
		return 0, false
	}
	l, h := 0, int((ePtr-sPtr)/x.segSize)
	for l <= h {
		m := int(uint(l+h) >> 1)
		p := uint64(sPtr) + uint64(m)*uint64(x.segSize)
		if p+uint64(x.segSize) > uint64(len(x.data)) {
			return 0, false
		}
		seg := x.data[p : p+uint64(x.segSize)]
		if x.compare(ip[:n], seg[:n]) < 0 {
			h = m - 1
		} else if x.compare(ip[:n], seg[n:2*n]) > 0 {
			l = m + 1
		} else {
			dataLen := binary.LittleEndian.Uint16(seg[2*n:])
			dataPtr := binary.LittleEndian.Uint32(seg[2*n+2:])
			if dataLen == 0 || uint64(dataPtr)+uint64(dataLen) > uint64(len(x.data)) {
				return 0, false
			}
			return uint64(dataPtr)<<16 | uint64(dataLen), true
		}
	}
	return 0, false
}

// compare compares a big-endian address with one from the index (IPv4:
// little-endian).
func (x *xdb) compare(ip, idx []byte) int {
	if x.ipBytes == 16 {
		return bytes.Compare(ip, idx)
	}
	a := binary.BigEndian.Uint32(ip)
	b := binary.LittleEndian.Uint32(idx)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (x *xdb) region(key uint64) string {
	ptr, n := key>>16, key&0xffff
	return xdbRegion(string(x.data[ptr : ptr+n]))
}

// xdbRegion turns an ip2region region string into "country/province/city".
// The variants: "国家|区域|省份|城市|ISP" (the 2.x data; "0" is unknown),
// "国家|省份|城市|ISP|ISO" (the 3.x data, ending in the country's ISO code,
// used as the country as MaxMind's is), and the 1.x "城市Id|国家|区域|省份|城市|ISP".
func xdbRegion(s string) string {
	f := strings.Split(s, "|")
	var country, province, city string
	switch {
	case len(f) == 5 && isISOCode(f[4]):
		country, province, city = f[4], f[1], f[2]
	case len(f) == 5:
		country, province, city = f[0], f[2], f[3]
	case len(f) == 6:
		country, province, city = f[1], f[3], f[4]
	case len(f) >= 3:
		country, province, city = f[0], f[1], f[2]
	default:
		return ""
	}
	return joinRegion(known(country), known(province), known(city))
}

func known(s string) string {
	s = strings.TrimSpace(s)
	if s == "0" || s == "内网IP" {
		return ""
	}
	return s
}

func isISOCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// Close does nothing: the buffer goes with the last reference.
func (x *xdb) Close() error { return nil }
