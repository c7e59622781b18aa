package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBurstPlan(t *testing.T) {
	cases := []struct {
		p                   burstPlan
		wantUser, wantAddr  int
		wantCheckRefusesSub string // "" = accepted
	}{
		{burstPlan{n: 1000, users: 100, sources: 8, wrong: 100}, 1, 13, ""},
		{burstPlan{n: 1000, users: 100, sources: 8, wrong: 0}, 0, 0, ""},
		{burstPlan{n: 20, users: 4, sources: 4, wrong: 2}, 1, 1, ""},
		{burstPlan{n: 1000, users: 20, sources: 8, wrong: 100}, 5, 13, "raise --password-users"},
		{burstPlan{n: 1000, users: 100, sources: 1, wrong: 100}, 1, 100, "raise --sources"},
		{burstPlan{n: 7, users: 3, sources: 2, wrong: 7}, 3, 4, ""}, // every one wrong
	}
	for _, tc := range cases {
		wrong, perUser := 0, map[int]int{}
		for i := range tc.p.n {
			if u := tc.p.user(i); u < 0 || u >= tc.p.users {
				t.Fatalf("%+v: login %d is user %d", tc.p, i, u)
			}
			if s := tc.p.source(i); s < 0 || s >= tc.p.sources {
				t.Fatalf("%+v: login %d from source %d", tc.p, i, s)
			}
			if tc.p.isWrong(i) {
				wrong++
			}
			perUser[tc.p.user(i)]++
		}
		if wrong != tc.p.wrong {
			t.Errorf("%+v: %d wrong logins, want %d", tc.p, wrong, tc.p.wrong)
		}
		if len(perUser) != min(tc.p.users, tc.p.n) {
			t.Errorf("%+v: logins of %d users, want every one", tc.p, len(perUser))
		}
		u, a := tc.p.maxFailures()
		if u != tc.wantUser || a != tc.wantAddr {
			t.Errorf("%+v: at most %d failures per user and %d per address, want %d and %d", tc.p, u, a, tc.wantUser, tc.wantAddr)
		}
		err := tc.p.check()
		switch {
		case tc.wantCheckRefusesSub == "" && err != nil:
			t.Errorf("%+v: check: %v", tc.p, err)
		case tc.wantCheckRefusesSub != "" && (err == nil || !strings.Contains(err.Error(), tc.wantCheckRefusesSub)):
			t.Errorf("%+v: check: %v, want an error saying %q", tc.p, err, tc.wantCheckRefusesSub)
		}
	}
}

func TestSplitByWindow(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(s int) int64 { return base.Add(time.Duration(s) * time.Second).UnixNano() }
	samples := []int64{1, 2, 3, 4, 5}
	began := []int64{at(0), at(1), at(2), at(3), at(4)}
	in, out := splitByWindow(samples, began, base.Add(time.Second), base.Add(3*time.Second))
	if fmt.Sprint(in) != "[2 3 4]" || fmt.Sprint(out) != "[1 5]" {
		t.Errorf("in %v out %v, want [2 3 4] and [1 5] (the window's ends included)", in, out)
	}
}

func TestParseFlagsBurst(t *testing.T) {
	cfg, err := parseFlags([]string{"--password-burst", "1000", "--flows", "3000", "--rate", "1000", "--desktops", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.burstPlan(); p.n != 1000 || p.users != 100 || p.sources != 8 || p.wrong != 100 {
		t.Errorf("plan %+v, want 1000 logins by 100 users from 8 sources, 100 wrong", p)
	}
	if d := cfg.burstDelay(); d != time.Second {
		t.Errorf("burst at %v, want a third of 3 s", d)
	}
	if off := cfg.burstSourceOffset(); off != 8 {
		t.Errorf("burst sources from %d, want 8: after the one worker's", off)
	}
	cfg, err = parseFlags([]string{"--password-burst", "10", "--password-burst-at", "0s", "--flows", "0", "--desktops", "0"}, io.Discard)
	if err != nil || cfg.burstDelay() != 0 {
		t.Errorf("a burst alone at 0s: %v, delay %v", err, cfg.burstDelay())
	}
	for _, args := range [][]string{
		{"--password-burst", "-1"},
		{"--password-burst", "20000"},
		{"--password-burst", "100", "--password-users", "0"},
		{"--password-burst", "100", "--password-wrong", "101"},
		{"--password-burst", "100", "--password-burst-at", "-1s"},
		{"--password-burst", "1000", "--password-users", "10"}, // 10 failures per user
		{"--password-burst", "1000", "--sources", "1"},         // 100 failures from one address
		{"--password-burst", "100", "--mode", "push,poll"},
		{"--password-burst", "100", "--create-only"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted it", args)
		}
	}
}

// TestBurstFire: every login of a burst reaches the hub on a connection
// opened before the start, with the right and wrong passwords of the
// plan; answers are counted by kind.
func TestBurstFire(t *testing.T) {
	var conns, wrong atomic.Int64 // the hub's connections, wrong passwords
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path != "/v1/password/login":
			http.Error(w, `{"error":"not_found"}`, 404)
		case strings.Contains(string(body), "-wrong"):
			wrong.Add(1)
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"unauthorized"}`)
		default:
			io.WriteString(w, `{"access_token":"x"}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cfg, err := parseFlags([]string{"--url", srv.URL, "--password-burst", "30", "--password-users", "3", "--password-wrong", "10",
		"--sources", "0", "--flows", "0", "--desktops", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := newBurster(cfg)
	defer b.close()
	b.users = []burstUser{{"u0", "p0"}, {"u1", "p1"}, {"u2", "p2"}}
	started := false
	rep := b.fire(context.Background(), time.Now(), func() {
		started = true
		if n := b.net.open.Load(); n != 30 {
			t.Errorf("%d connections open at the start, want 30", n)
		}
	})
	if !started || rep.start.IsZero() || rep.end.Before(rep.start) {
		t.Fatalf("started %v, start %v, end %v", started, rep.start, rep.end)
	}
	if n := conns.Load(); n != 30 {
		t.Errorf("the hub saw %d connections, want one per login", n)
	}
	if rep.answers["200"] != 27 || rep.answers["401_unauthorized"] != 3 || wrong.Load() != 3 || len(rep.all) != 30 || len(rep.ok) != 27 {
		t.Errorf("answers %v (%d wrong seen), %d latencies (%d ok); want 27 ok, 3 unauthorized", rep.answers, wrong.Load(), len(rep.all), len(rep.ok))
	}
}
