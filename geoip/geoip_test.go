package geoip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/loginhub/loginhub/geoip/geoiptest"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// writeMMDB builds a small City database: 1.2.3.0/24 in Shenzhen (English
// names only) and 5.6.7.0/24 in Beijing (with Chinese names), and an IPv6
// network in Shenzhen.
func writeMMDB(t testing.TB) string {
	t.Helper()
	names := geoiptest.Names
	shenzhen := mmdbtype.Map{
		"country":      mmdbtype.Map{"iso_code": mmdbtype.String("CN"), "names": names("en", "China")},
		"subdivisions": mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("GD"), "names": names("en", "Guangdong")}},
		"city":         mmdbtype.Map{"names": names("en", "Shenzhen")},
	}
	beijing := mmdbtype.Map{
		"country":      mmdbtype.Map{"iso_code": mmdbtype.String("CN"), "names": names("en", "China", "zh-CN", "中国")},
		"subdivisions": mmdbtype.Slice{mmdbtype.Map{"names": names("en", "Beijing", "zh-CN", "北京市")}},
		"city":         mmdbtype.Map{"names": names("en", "Beijing", "zh-CN", "北京")},
	}
	countryOnly := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("US")}}
	return geoiptest.WriteMMDB(t, map[string]mmdbtype.Map{
		"1.2.3.0/24": shenzhen, "5.6.7.0/24": beijing, "240e::/20": shenzhen, "8.8.8.0/24": countryOnly,
	})
}

type xdbSeg struct {
	start, end string
	region     string
}

// writeXDB builds an xdb file as the format documents it (see xdb.go):
// structure 2.0 for IPv4, 3.0 with ipVersion 4 or 6 when v3. Each
// segment stays within one /16 (one vector index cell), and they are
// sorted.
func writeXDB(t testing.TB, v3, ipv6 bool, segs []xdbSeg) string {
	t.Helper()
	ipBytes := 4
	if ipv6 {
		ipBytes = 16
	}
	segSize := 2*ipBytes + 6
	buf := make([]byte, xdbHeaderLen+xdbVectorLen)
	version := uint16(2)
	if v3 {
		version = 3
		binary.LittleEndian.PutUint16(buf[16:], uint16(map[bool]int{false: 4, true: 6}[ipv6]))
		binary.LittleEndian.PutUint16(buf[18:], 4)
	}
	binary.LittleEndian.PutUint16(buf, version)
	binary.LittleEndian.PutUint16(buf[2:], xdbVectorPolicy)
	binary.LittleEndian.PutUint32(buf[4:], 1700000000)
	// region data
	ptrs := make([]uint32, len(segs))
	for i, s := range segs {
		ptrs[i] = uint32(len(buf))
		buf = append(buf, s.region...)
	}
	first := uint32(len(buf))
	for i, s := range segs {
		a, b := netip.MustParseAddr(s.start), netip.MustParseAddr(s.end)
		as, bs := a.AsSlice(), b.AsSlice()
		if len(as) != ipBytes || as[0] != bs[0] || as[1] != bs[1] {
			t.Fatalf("segment %v: not one /16 of the right family", s)
		}
		p := uint32(len(buf))
		seg := make([]byte, segSize)
		if ipv6 {
			copy(seg, as)
			copy(seg[16:], bs)
		} else {
			binary.LittleEndian.PutUint32(seg, binary.BigEndian.Uint32(as))
			binary.LittleEndian.PutUint32(seg[4:], binary.BigEndian.Uint32(bs))
		}
		binary.LittleEndian.PutUint16(seg[2*ipBytes:], uint16(len(s.region)))
		binary.LittleEndian.PutUint32(seg[2*ipBytes+2:], ptrs[i])
		buf = append(buf, seg...)
		cell := xdbHeaderLen + (int(as[0])*256+int(as[1]))*8
		if binary.LittleEndian.Uint32(buf[cell:]) == 0 {
			binary.LittleEndian.PutUint32(buf[cell:], p)
		}
		binary.LittleEndian.PutUint32(buf[cell+4:], p)
	}
	binary.LittleEndian.PutUint32(buf[8:], first)
	binary.LittleEndian.PutUint32(buf[12:], uint32(len(buf)-segSize))
	path := filepath.Join(t.TempDir(), "ip2region.xdb")
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func checkRegions(t *testing.T, db *DB, want map[string]string) {
	t.Helper()
	for addr, w := range want {
		for range 2 { // the second from the cache
			if got := db.Region(netip.MustParseAddr(addr)); got != w {
				t.Errorf("Region(%s) = %q, want %q", addr, got, w)
			}
		}
	}
}

func TestMMDB(t *testing.T) {
	db := open(t, writeMMDB(t))
	if db.Kind() != "mmdb" || db.Detail() != "GeoLite2-City" {
		t.Errorf("Kind, Detail = %q, %q", db.Kind(), db.Detail())
	}
	checkRegions(t, db, map[string]string{
		"1.2.3.4":          "CN/Guangdong/Shenzhen",
		"::ffff:1.2.3.200": "CN/Guangdong/Shenzhen",
		"5.6.7.8":          "CN/北京市/北京",
		"8.8.8.8":          "US",
		"240e:3::1":        "CN/Guangdong/Shenzhen",
		"9.9.9.9":          "9.9.0.0/16", // unknown: the prefix
		"10.1.2.3":         "10.1.0.0/16",
		"2400:cb00::1":     "2400:cb00::/32",
	})
}

func TestXDB(t *testing.T) {
	v4 := []xdbSeg{
		{"1.2.0.0", "1.2.2.255", "中国|0|广东省|广州市|电信"},
		{"1.2.3.0", "1.2.3.255", "中国|0|广东省|深圳市|电信"},
		{"5.6.7.0", "5.6.7.255", "中国|0|北京|北京市|联通"},
		{"8.8.8.0", "8.8.8.255", "美国|0|0|0|0"},
		{"10.0.0.0", "10.0.255.255", "0|0|0|内网IP|内网IP"},
		{"11.0.0.0", "11.0.255.255", "中国|广东省|深圳市|电信|CN"},
	}
	want := map[string]string{
		"1.2.3.4":          "中国/广东省/深圳市",
		"::ffff:1.2.3.255": "中国/广东省/深圳市",
		"1.2.0.0":          "中国/广东省/广州市",
		"5.6.7.8":          "中国/北京/北京市",
		"8.8.8.8":          "美国",
		"10.0.0.1":         "10.0.0.0/16", // 内网IP: the prefix
		"11.0.1.1":         "CN/广东省/深圳市",
		"1.2.4.0":          "1.2.0.0/16", // between segments
		"9.9.9.9":          "9.9.0.0/16",
		"2400:cb00::1":     "2400:cb00::/32",
	}
	for _, v3 := range []bool{false, true} {
		t.Run(fmt.Sprint("v3=", v3), func(t *testing.T) {
			db := open(t, writeXDB(t, v3, false, v4))
			if db.Kind() != "xdb" || db.Detail() != "IPv4" {
				t.Errorf("Kind, Detail = %q, %q", db.Kind(), db.Detail())
			}
			checkRegions(t, db, want)
		})
	}
	t.Run("IPv6", func(t *testing.T) {
		db := open(t, writeXDB(t, true, true, []xdbSeg{
			{"240e::", "240e:0:ffff:ffff:ffff:ffff:ffff:ffff", "中国|广东省|深圳市|电信|CN"},
			{"240e:1::", "240e:1:ffff:ffff:ffff:ffff:ffff:ffff", "中国|北京|北京市|电信|CN"},
		}))
		if db.Detail() != "IPv6" {
			t.Errorf("Detail = %q", db.Detail())
		}
		checkRegions(t, db, map[string]string{
			"240e::1":      "CN/广东省/深圳市",
			"240e:1:2::3":  "CN/北京/北京市",
			"240e:2::1":    "240e:2::/32",
			"1.2.3.4":      "1.2.0.0/16",
			"2400:cb00::1": "2400:cb00::/32",
		})
	})
}

func TestXDBRegionVariants(t *testing.T) {
	for in, want := range map[string]string{
		"中国|0|广东省|深圳市|电信":       "中国/广东省/深圳市",
		"中国|华南|广东省|0|0":         "中国/广东省",
		"中国|广东省|深圳市|电信|CN":      "CN/广东省/深圳市",
		"新加坡|0|0|新加坡|0":         "新加坡//新加坡",
		"2163|中国|华南|广东省|深圳市|电信": "中国/广东省/深圳市",
		"0|0|0|内网IP|内网IP":       "",
		"":                      "",
	} {
		if got := xdbRegion(in); got != want {
			t.Errorf("xdbRegion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.mmdb")); err == nil {
		t.Error("Open(missing): no error")
	}
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(junk); err == nil {
		t.Error("Open(junk): no error")
	}
	// An xdb header whose segment index is past the end of the file.
	bad := make([]byte, xdbHeaderLen+xdbVectorLen)
	binary.LittleEndian.PutUint16(bad, 2)
	binary.LittleEndian.PutUint16(bad[2:], 1)
	binary.LittleEndian.PutUint32(bad[8:], uint32(len(bad)))
	binary.LittleEndian.PutUint32(bad[12:], uint32(len(bad)+14))
	badPath := filepath.Join(dir, "bad.xdb")
	if err := os.WriteFile(badPath, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(badPath); err == nil {
		t.Error("Open(truncated xdb): no error")
	}
}

// TestConcurrent runs lookups in parallel (with -race).
func TestConcurrent(t *testing.T) {
	for _, db := range []*DB{open(t, writeMMDB(t)), open(t, writeXDB(t, false, false, []xdbSeg{{"1.2.3.0", "1.2.3.255", "中国|0|广东省|深圳市|电信"}}))} {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					addr := netip.AddrFrom4([4]byte{1, 2, byte(g), byte(i)})
					if r := db.Region(addr); r == "" {
						t.Errorf("Region(%s) = \"\"", addr)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkRegion(b *testing.B) {
	addr := netip.MustParseAddr("1.2.3.4")
	for _, c := range []struct {
		name string
		path string
	}{
		{"mmdb", writeMMDB(b)},
		{"xdb", writeXDB(b, false, false, []xdbSeg{
			{"1.2.0.0", "1.2.2.255", "中国|0|广东省|广州市|电信"},
			{"1.2.3.0", "1.2.3.255", "中国|0|广东省|深圳市|电信"},
			{"1.2.4.0", "1.2.255.255", "中国|0|广东省|东莞市|电信"},
		})},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := open(b, c.path)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if db.Region(addr) == "" {
						b.Fatal("no region")
					}
				}
			})
		})
	}
	b.Run("mmdb-uncached", func(b *testing.B) { // the first lookup of a place
		db := open(b, writeMMDB(b))
		key, _ := db.src.lookup(addr)
		b.ReportAllocs()
		for b.Loop() {
			db.src.region(key)
		}
	})
	b.Run("prefix", func(b *testing.B) {
		db := open(b, writeMMDB(b))
		unknown := netip.MustParseAddr("9.9.9.9")
		b.ReportAllocs()
		for b.Loop() {
			db.Region(unknown)
		}
	})
}
