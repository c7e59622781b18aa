package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/loginhub/loginhub/bench"
)

// TestBenchSmoke runs `loginhub bench` against a real hub in every mode,
// tiny: every flow must succeed and every latency be measured. (--procs is
// not covered: the test binary is not loginhub.)
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run")
	}
	off := startHub(t, map[string]string{"LOGINHUB_IP_BINDING": "off"})
	strict := startHub(t, nil)
	cases := []struct {
		name string
		hub  *testHub
		args []string
	}{
		{"push", off, []string{"--mode", "push"}},
		{"poll", off, []string{"--mode", "poll", "--poll-interval", "200ms"}},
		{"longpoll", off, []string{"--mode", "longpoll"}},
		// One address per desktop: strict IP binding holds across sources.
		{"push strict binding", strict, []string{"--mode", "push", "--sources", "3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// One phone: concurrent sandbox logins make the hub call itself
			// concurrently, which can leave a never-used connection that
			// holds the hub's http.Server.Shutdown for 5 s.
			args := append([]string{"--url", tc.hub.URL, "--desktops", "50", "--flows", "50", "--rate", "100",
				"--phones", "1", "--sources", "4", "--settle", "0", "--duration", "20s", "--json"}, tc.args...)
			var stdout, stderr bytes.Buffer
			start := time.Now()
			if err := bench.Run(ctx, args, &stdout, &stderr); err != nil {
				t.Fatalf("bench.Run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			var r bench.Result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("decoding the result: %v\n%s", err, &stdout)
			}
			if r.OK != 50 || r.Errors != 0 || r.DesktopsOpen != 50 || r.NotStarted != 0 || r.Incomplete {
				t.Fatalf("result: ok %d errors %d %v desktops %d not started %d incomplete %v; want 50 ok, 0 errors, 50 desktops\n%s",
					r.OK, r.Errors, r.ErrorKinds, r.DesktopsOpen, r.NotStarted, r.Incomplete, &stdout)
			}
			for name, l := range map[string]bench.Latency{"open": r.OpenLatency, "scanned": r.Scanned, "confirm": r.Confirm, "redeem": r.Redeem} {
				if l.N != 50 || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
					t.Errorf("%s latency %+v, want 50 ordered positive samples", name, l)
				}
			}
			if !r.Hub.Available || r.Hub.RSSIdle <= 0 || r.Hub.GoroutinesIdle <= 0 {
				t.Errorf("hub figures %+v", r.Hub)
			}
			if r.Mode == "push" && r.Hub.SocketsIdle != 50 {
				t.Errorf("hub had %v sockets open with 50 idle desktops", r.Hub.SocketsIdle)
			}
			if r.Mode != "push" && r.StatusRequestsPerFlow < 1 {
				t.Errorf("%s: %.2f status requests per flow, want at least 1", r.Mode, r.StatusRequestsPerFlow)
			}
			if r.Mode == "poll" && r.Confirm.Max > 1000 {
				t.Errorf("poll every 200ms noticed confirm after %.0f ms", r.Confirm.Max)
			}
			t.Logf("%s: %v; confirm p50 %.2f ms", tc.name, time.Since(start).Round(time.Millisecond), r.Confirm.P50)
		})
	}
}
