package memstore

import (
	"context"
	"crypto/sha256"
	"maps"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/loginhub/loginhub/authcore"
)

// sameInstants makes a record's times comparable with reflect.DeepEqual
// after a round trip, which keeps the instant but not the zone or the
// monotonic reading.
func sameInstants(ts ...*time.Time) {
	for _, t := range ts {
		if !t.IsZero() {
			*t = time.Unix(0, t.UnixNano())
		}
	}
}

func TestStoredTicketRoundTrip(t *testing.T) {
	now := time.Now()
	full := authcore.TicketRecord{
		ID: "tk1", State: authcore.StateScanned, Version: 2,
		Trail:     []authcore.State{authcore.StatePending, authcore.StateScanned},
		ExpiresAt: now.Add(time.Minute), CreatedAt: now.UTC(),
		WatchSecretHash: sha256.Sum256([]byte("secret")), DPoPJKT: "jkt",
		ClientIP:  netip.MustParseAddr("fe80::1%eth0"),
		Requester: authcore.Requester{IP: "203.0.113.9", Location: "上海", Device: "Chrome on Linux", UserAgent: strings.Repeat("u", 600), CreatedAt: now},
		ScannerID: "u_1", Scanner: authcore.Profile{Nickname: "小明 😀", AvatarURL: "https://example.com/a.png"},
	}
	for name, rec := range map[string]authcore.TicketRecord{
		"every field": full,
		"zero":        {ID: "tk2"},
		"IPv4":        {ID: "tk3", ClientIP: netip.MustParseAddr("127.0.0.1"), State: authcore.StatePending, Trail: []authcore.State{authcore.StatePending}},
		"4in6":        {ID: "tk4", ClientIP: netip.MustParseAddr("::ffff:127.0.0.1")},
	} {
		deleteAt := now.Add(time.Hour)
		st := storeTicket(rec, deleteAt)
		got := st.record(rec.ID)
		want := rec
		sameInstants(&want.ExpiresAt, &want.CreatedAt, &want.Requester.CreatedAt)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, want)
		}
		if st.state() != rec.State || st.scannerID() != rec.ScannerID {
			t.Errorf("%s: state %q scanner %q, want %q %q", name, st.state(), st.scannerID(), rec.State, rec.ScannerID)
		}
		if st.gone(deleteAt) || !st.gone(deleteAt.Add(time.Nanosecond)) {
			t.Errorf("%s: gone at the retention deadline, or not after it", name)
		}
	}
}

func TestStoredSessionRoundTrip(t *testing.T) {
	now := time.Now()
	for name, rec := range map[string]authcore.SessionRecord{
		"every field": {
			ID: "s1", FamilyID: "f1", UserID: "u_1",
			AccessHash: sha256.Sum256([]byte("a")), RefreshHash: sha256.Sum256([]byte("r")),
			AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(720 * time.Hour), CreatedAt: now,
			AMR: []string{"wx", "qr", "face", "vbm"}, StepUps: map[string]time.Time{"face": now.Add(time.Minute), "vbm": now.Add(2 * time.Minute)},
			Provider: "wechat", Subject: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", UnionID: "o6_bmasdasdsad6_2sgVt7hMZOPfL",
		},
		"no AMR, never a step-up": {ID: "s2", FamilyID: "f2", UserID: "u_2", AccessHash: sha256.Sum256([]byte("b")), CreatedAt: now},
		"a step-up of a method not in the AMR": {ID: "s3", FamilyID: "f3", UserID: "u_3", AccessHash: sha256.Sum256([]byte("c")),
			AMR: []string{"sms"}, StepUps: map[string]time.Time{"face": now}},
	} {
		st := storeSession(rec)
		got := st.record(rec.AccessHash)
		want := rec
		want.StepUps = maps.Clone(rec.StepUps)
		sameInstants(&want.AccessExpiresAt, &want.RefreshExpiresAt, &want.CreatedAt)
		for m, at := range want.StepUps {
			sameInstants(&at)
			want.StepUps[m] = at
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, want)
		}
		if st.familyID() != rec.FamilyID || st.userID() != rec.UserID {
			t.Errorf("%s: family %q user %q", name, st.familyID(), st.userID())
		}
	}
}

// BenchmarkGCWithRecords reports how long a forced garbage-collection
// cycle takes with 15 000 waiting tickets and 15 000 sessions in the store
// (the state of the one-node benchmark after its flows), above the same
// cycle with an empty store.
func BenchmarkGCWithRecords(b *testing.B) {
	ctx := context.Background()
	cycle := func() time.Duration {
		start := time.Now()
		runtime.GC()
		return time.Since(start)
	}
	var empty time.Duration
	for range 20 {
		empty += cycle()
	}
	empty /= 20
	s := New(nil, nil)
	now := time.Now()
	for range 15000 {
		tk := authcore.TicketRecord{
			ID: authcore.NewTicketID(), State: authcore.StatePending, Version: 1,
			Trail: []authcore.State{authcore.StatePending}, ExpiresAt: now.Add(10 * time.Minute), CreatedAt: now,
			WatchSecretHash: sha256.Sum256([]byte("secret")), ClientIP: netip.MustParseAddr("127.0.0.1"),
			Requester: authcore.Requester{IP: "127.0.0.1", Location: "loopback", Device: "Chrome on Linux", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", CreatedAt: now},
		}
		if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
			b.Fatal(err)
		}
		// A session needs its user (CreateSession refuses an unknown one).
		u, _, err := s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "o" + tk.ID}, authcore.Profile{},
			authcore.User{ID: "u_" + authcore.NewTicketID(), Nickname: "bench", CreatedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		rec := authcore.SessionRecord{
			ID: authcore.NewTicketID(), FamilyID: authcore.NewTicketID(), UserID: u.ID,
			AccessHash: sha256.Sum256([]byte(tk.ID + "a")), RefreshHash: sha256.Sum256([]byte(tk.ID + "r")),
			AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(720 * time.Hour), CreatedAt: now,
			AMR: []string{"wx", "qr"}, Provider: "wechat", Subject: "o" + authcore.NewTicketID() + "abcdefghijk",
		}
		if err := s.CreateSession(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	var total time.Duration
	for b.Loop() {
		total += cycle()
	}
	b.ReportMetric(float64(total/time.Duration(b.N)-empty)/1e6, "ms-above-empty/cycle")
	runtime.KeepAlive(s)
}

// FuzzStoredRoundTrip holds the compact forms to their records for any
// text in the string fields (the trail and the AMR hold identifiers, which
// have no spaces) and any instant.
func FuzzStoredRoundTrip(f *testing.F) {
	f.Add("tk1", "jkt", "203.0.113.9", "上海", "Chrome", "Mozilla/5.0 (X11)", "u_1", "小明", "https://a/b.png", int64(1795660805135000000))
	f.Add("", "", "", "", "", "", "", "", "", int64(1))
	f.Add("\x00\xff", "a b", "\u2028", "\"", "\\", strings.Repeat("x", 70000), "id with spaces", "\n", "%", int64(-1))
	f.Fuzz(func(t *testing.T, id, jkt, ip, location, device, ua, scanner, nickname, avatar string, ns int64) {
		if ns == 0 {
			ns = 1 // 0 is the zero time, tested apart
		}
		at := time.Unix(0, ns)
		tk := authcore.TicketRecord{
			ID: id, State: authcore.StateScanned, Version: 2, Trail: []authcore.State{authcore.StatePending, authcore.StateScanned},
			ExpiresAt: at, CreatedAt: at, WatchSecretHash: sha256.Sum256([]byte(id)), DPoPJKT: jkt,
			ClientIP:  netip.MustParseAddr("127.0.0.1"),
			Requester: authcore.Requester{IP: ip, Location: location, Device: device, UserAgent: ua, CreatedAt: at},
			ScannerID: scanner, Scanner: authcore.Profile{Nickname: nickname, AvatarURL: avatar},
		}
		st := storeTicket(tk, at)
		if got := st.record(id); !reflect.DeepEqual(got, tk) {
			t.Fatalf("ticket round trip\n got %+v\nwant %+v", got, tk)
		}
		sess := authcore.SessionRecord{
			ID: id, FamilyID: jkt, UserID: scanner, AccessHash: sha256.Sum256([]byte(ua)),
			AccessExpiresAt: at, RefreshExpiresAt: at, CreatedAt: at, StepUps: map[string]time.Time{"face": at, "vbm": at},
			AMR: []string{"wx", "qr"}, Provider: device, Subject: nickname, UnionID: avatar,
		}
		ss := storeSession(sess)
		if got := ss.record(sess.AccessHash); !reflect.DeepEqual(got, sess) {
			t.Fatalf("session round trip\n got %+v\nwant %+v", got, sess)
		}
	})
}

// BenchmarkSessionMemory reports the heap that 20 000 sessions of a
// wx.login without step-ups take in the store's session map, per session
// (the compact record, its packed text and its map slot).
func BenchmarkSessionMemory(b *testing.B) {
	now := time.Now()
	const n = 20000
	recs := make([]authcore.SessionRecord, n)
	for i := range recs {
		id := authcore.NewTicketID()
		recs[i] = authcore.SessionRecord{
			ID: id, FamilyID: authcore.NewTicketID(), UserID: "u_" + authcore.NewTicketID(),
			AccessHash: sha256.Sum256([]byte(id + "a")), RefreshHash: sha256.Sum256([]byte(id + "r")),
			AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(720 * time.Hour), CreatedAt: now, AuthTime: now,
			AMR: []string{"wx"}, Provider: "wechat", Subject: "o" + id + "abcdefghijk", Method: "wx",
			IPMasked: "203.0.113.0/24", Region: "上海", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var perSession float64
	for b.Loop() {
		before := heap()
		sessions := make(map[[32]byte]storedSession)
		for _, r := range recs {
			sessions[r.AccessHash] = storeSession(r)
		}
		perSession = float64(heap()-before) / n
		runtime.KeepAlive(sessions)
	}
	b.ReportMetric(perSession, "B/session")
	b.ReportMetric(float64(unsafe.Sizeof(storedSession{})), "B/record")
}
