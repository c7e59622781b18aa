package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/bench"
)

// TestBenchSmoke runs `loginhub bench` against a real hub in every mode,
// tiny: every flow must succeed and every latency be measured. (--procs is
// not covered: the test binary is not loginhub.)
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run")
	}
	internal := map[string]string{"LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"}
	off := startHub(t, map[string]string{"LOGINHUB_IP_BINDING": "off", "LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})
	strict := startHub(t, internal)
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
		// The flows confirm the 50 waiting desktops' tickets.
		{"confirm waiting", off, []string{"--mode", "push", "--confirm-waiting"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// One phone: concurrent sandbox logins make the hub call itself
			// concurrently, which can leave a never-used connection that
			// holds the hub's http.Server.Shutdown for 5 s.
			args := append([]string{"--url", tc.hub.URL, "--metrics", internalURL(t, tc.hub.logs), "--desktops", "50", "--flows", "50", "--rate", "100",
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
			lat := map[string]bench.Latency{"open": r.OpenLatency, "scanned": r.Scanned, "confirm": r.Confirm, "redeem": r.Redeem}
			if slices.Contains(tc.args, "--confirm-waiting") {
				if r.OpenLatency.N != 0 {
					t.Errorf("%d desktops opened during the flows, want none", r.OpenLatency.N)
				}
				delete(lat, "open")
			}
			for name, l := range lat {
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

// TestBenchSmokeCrossNode runs `loginhub bench` against two hubs sharing
// one Redis, the ticket keys and a public origin, as behind a balancer:
// every flow's phone scans and confirms on the other node than its
// desktop, so every confirmation crosses nodes through Redis. Then a tiny
// --create-only run on both, by count and by time.
func TestBenchSmokeCrossNode(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run")
	}
	redis := redistest.Start(t, redistest.Options{})
	env := map[string]string{
		"LOGINHUB_REDIS_URL": redis.URL, "LOGINHUB_TICKET_KEYS": sharedKeys(), "LOGINHUB_DATA_KEY": sharedDataKey(),
		"LOGINHUB_PUBLIC_URL": clusterOrigin, "LOGINHUB_ALLOWED_ORIGINS": clusterOrigin,
		"LOGINHUB_IP_BINDING": "off", "LOGINHUB_QR_TTL": "10m",
		"LOGINHUB_SANDBOX":       "on", // Redis and no WeChat credentials: a staging cluster
		"LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0",
	}
	h1, h2 := startHub(t, env), startHub(t, env)
	urls := h1.URL + "," + h2.URL
	metrics := internalURL(t, h1.logs) + "," + internalURL(t, h2.logs)

	runBench := func(t *testing.T, args ...string) bench.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var stdout, stderr bytes.Buffer
		args = append([]string{"--url", urls, "--metrics", metrics, "--sources", "4", "--settle", "0", "--duration", "15s", "--json"}, args...)
		if err := bench.Run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("bench.Run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
		}
		var r bench.Result
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("decoding the result: %v\n%s", err, &stdout)
		}
		if len(r.Nodes) != 2 || len(r.HubPerNode) != 2 || !r.Hub.Available {
			t.Errorf("nodes %v, per node %+v, hub available %v; want both nodes' figures", r.Nodes, r.HubPerNode, r.Hub.Available)
		}
		return r
	}

	flows := func(t *testing.T, extra ...string) {
		// Two phones: one logs in on each node, each node calls its own
		// sandbox once (see TestBenchSmoke).
		r := runBench(t, append([]string{"--desktops", "40", "--flows", "40", "--rate", "100", "--phones", "2"}, extra...)...)
		if r.OK != 40 || r.Errors != 0 || r.DesktopsOpen != 40 || r.NotStarted != 0 || r.Incomplete || !r.CrossNode {
			t.Fatalf("result: ok %d errors %d %v desktops %d not started %d incomplete %v cross-node %v; want 40 ok, 0 errors, 40 desktops, cross-node",
				r.OK, r.Errors, r.ErrorKinds, r.DesktopsOpen, r.NotStarted, r.Incomplete, r.CrossNode)
		}
		if r.Confirm.N != 40 || r.Confirm.P50 <= 0 || r.Redeem.N != 40 {
			t.Errorf("confirm %+v redeem %+v; want 40 samples each", r.Confirm, r.Redeem)
		}
		for _, n := range r.HubPerNode {
			if n.SocketsIdle != 20 || n.CPUFlowsPercent <= 0 {
				t.Errorf("node %s: %v sockets with the desktops idle (want 20: half of them), CPU during flows %.1f%%",
					n.URL, n.SocketsIdle, n.CPUFlowsPercent)
			}
		}
		if sum := r.HubPerNode[0].RSSIdle + r.HubPerNode[1].RSSIdle; sum != r.Hub.RSSIdle {
			t.Errorf("summed RSS %v, nodes' %v", r.Hub.RSSIdle, sum)
		}
		t.Logf("confirm→desktop across nodes p50 %.2f ms p99 %.2f ms", r.Confirm.P50, r.Confirm.P99)
	}
	t.Run("flows --origin", func(t *testing.T) { flows(t, "--origin", clusterOrigin) })
	// Without --origin the WebSockets take the public origin from qr_url.
	t.Run("flows default origin", func(t *testing.T) { flows(t) })

	t.Run("create-only", func(t *testing.T) {
		r := runBench(t, "--create-only", "--flows", "2000", "--concurrency", "8")
		if r.Mode != "create" || r.OK != 2000 || r.Errors != 0 || r.Incomplete || r.Create.N != 2000 ||
			r.CreatesPerSec <= 0 || r.Create.P50 <= 0 || r.Create.P99 < r.Create.P50 {
			t.Fatalf("create: %+v", r)
		}
		t.Logf("%.0f creations/s on two nodes, p50 %.2f ms p99 %.2f ms", r.CreatesPerSec, r.Create.P50, r.Create.P99)
	})
	t.Run("create-only until --duration", func(t *testing.T) {
		// The run's set-up (a probe of each node) counts against
		// --duration too: 1 s leaves a loaded CI machine room for it, and
		// the creations must still fill most of the rest and stop by 2 s.
		r := runBench(t, "--create-only", "--flows", "0", "--concurrency", "4", "--duration", "1s")
		if r.OK <= 0 || r.Errors != 0 || r.Incomplete || r.Create.N != r.OK || r.FlowSeconds < 0.4 || r.FlowSeconds > 2 {
			t.Fatalf("create until --duration: ok %d errors %d %v incomplete %v in %.2fs", r.OK, r.Errors, r.ErrorKinds, r.Incomplete, r.FlowSeconds)
		}
	})
}

// TestBenchSmokePasswordBurst runs --password-burst small beside the
// flows: the users are prepared through the sandbox, every login is
// answered (right, wrong, or 503 when it waited too long for a hash: the
// race detector slows argon2id down many times), and the figures the
// burst reports are there.
func TestBenchSmokePasswordBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run")
	}
	h := startHub(t, map[string]string{"LOGINHUB_IP_BINDING": "off", "LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--url", h.URL, "--metrics", internalURL(t, h.logs), "--desktops", "40", "--flows", "40", "--rate", "100",
		"--confirm-waiting", "--phones", "1", "--sources", "4", "--settle", "0", "--duration", "50s", "--json",
		"--password-burst", "20", "--password-users", "4", "--password-wrong", "10", "--password-burst-at", "100ms"}
	var stdout, stderr bytes.Buffer
	if err := bench.Run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("bench.Run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	var r bench.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decoding the result: %v\n%s", err, &stdout)
	}
	b := r.Burst
	if r.OK != 40 || r.Errors != 0 || b == nil {
		t.Fatalf("flows ok %d errors %d %v, burst %+v; want 40 ok and a burst", r.OK, r.Errors, r.ErrorKinds, b)
	}
	answered := 0
	for kind, n := range b.Answers {
		switch kind {
		case "200", "401_unauthorized", "503_upstream_unavailable":
			answered += n
		default:
			t.Errorf("%d password logins answered %s", n, kind)
		}
	}
	if b.Logins != 20 || b.Wrong != 2 || answered != 20 || b.OK < 1 || b.Answers["401_unauthorized"] > 2 || b.Busy != b.Answers["503_upstream_unavailable"] {
		t.Errorf("burst: %d logins, %d wrong, answers %v; want 20 answered, 2 wrong, some ok", b.Logins, b.Wrong, b.Answers)
	}
	if b.Latency.N != 20 || b.OKLatency.N != b.OK || b.Seconds <= 0 || b.PrepareSeconds <= 0 {
		t.Errorf("burst latencies %+v / ok %+v, lasted %.2fs, prepared in %.2fs", b.Latency, b.OKLatency, b.Seconds, b.PrepareSeconds)
	}
	if b.RSSReads < 1 || b.PeakRSS < b.RSSBefore || b.RSSBefore <= 0 || b.PeakHeapGoal <= 0 {
		t.Errorf("burst memory: RSS %.0f then peak %.0f in %d reads, heap goal %.0f", b.RSSBefore, b.PeakRSS, b.RSSReads, b.PeakHeapGoal)
	}
	if n := b.ConfirmDuring.N + b.ConfirmOutside.N; n != r.Confirm.N {
		t.Errorf("confirmations during the burst %d + outside it %d = %d, want all %d", b.ConfirmDuring.N, b.ConfirmOutside.N, n, r.Confirm.N)
	}
	t.Logf("burst: answers %v in %.2fs; peak RSS %.1f MiB", b.Answers, b.Seconds, b.PeakRSS/(1<<20))
}
