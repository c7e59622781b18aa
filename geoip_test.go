package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/geoip/geoiptest"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestGeoIPDB: a GeoIP database that does not open, or is neither format,
// stops the hub at start with an error naming the variable; a good one is
// named in the start-up log, and without one regions are prefixes.
func TestGeoIPDB(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.mmdb"), junk} {
		env := map[string]string{"LOGINHUB_ADDR": "127.0.0.1:0", "LOGINHUB_GEOIP_DB": path}
		err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), "LOGINHUB_GEOIP_DB") {
			t.Errorf("%s: run = %v, want an error starting with LOGINHUB_GEOIP_DB", path, err)
		}
	}

	good := geoiptest.WriteMMDB(t, map[string]mmdbtype.Map{"1.2.3.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("CN")}}})
	waitLog(t, startHub(t, map[string]string{"LOGINHUB_GEOIP_DB": good}), `"regions":"`+good+` (mmdb GeoLite2-City)"`)
	waitLog(t, startHub(t, nil), `"regions":"prefix"`)
}

// waitLog waits for the start-up log, written just after the line
// startHub reads, to contain want.
func waitLog(t *testing.T, h *testHub, want string) {
	t.Helper()
	if !h.logs.waitFor(5*time.Second, func(l string) bool { return strings.Contains(l, want) }) {
		t.Errorf("start-up log lacks %s:\n%s", want, h.logs)
	}
}
