package redisstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/authcore/sms"
	"github.com/loginhub/loginhub/authcore/storetest"
	"github.com/loginhub/loginhub/authcore/wechat"
)

// limiter is handlers.Limiter, restated so this package need not import
// the HTTP layer.
type limiter interface {
	Allow(ctx context.Context, key string, limit int, per time.Duration) (bool, time.Duration, error)
}

var (
	_ limiter           = (*redisstore.Store)(nil)
	_ wechat.TokenCache = (*redisstore.Store)(nil)
)

var prefixes atomic.Int64

// newPrefix returns a key prefix no other test uses, so tests can share a
// server.
func newPrefix() string { return fmt.Sprint("lht", prefixes.Add(1)) }

// forward calls notify for every ticket published on ps until ps closes,
// decoding channel names and messages as s does.
func forward(t *testing.T, ps *redis.PubSub, s *redisstore.Store, notify authcore.Notifier) {
	ch := ps.Channel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			id, ok := s.TicketID(m.Channel)
			if !ok {
				t.Errorf("message on an unexpected channel %q", m.Channel)
				continue
			}
			rec, err := s.DecodeTicket(id, m.Payload)
			if err != nil {
				t.Errorf("message %q on %q: %v; want a ticket", m.Payload, m.Channel, err)
				continue
			}
			notify(rec)
		}
	}()
	t.Cleanup(func() { ps.Close(); <-done })
}

func TestStandalone(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, notify authcore.Notifier) authcore.Store {
			prefix := newPrefix()
			s := redisstore.New(c, redisstore.Options{Prefix: prefix})
			if notify != nil {
				ps := c.PSubscribe(context.Background(), prefix+":{t:*}:v")
				if _, err := ps.Receive(context.Background()); err != nil {
					t.Fatalf("PSUBSCRIBE: %v", err)
				}
				forward(t, ps, s, notify)
			}
			return s
		})
	})
	t.Run("TokenCache", func(t *testing.T) {
		storetest.RunTokenCache(t, func(t *testing.T) wechat.TokenCache {
			return redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
		})
	})
	t.Run("Mailbox", func(t *testing.T) {
		storetest.RunMailbox(t, func(t *testing.T) sms.Mailbox {
			return redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
		})
	})
	t.Run("TokenCacheKeys", func(t *testing.T) { testTokenCacheKeys(t, c) })
	t.Run("Publish", func(t *testing.T) { testPublish(t, c, c.Subscribe) })
	t.Run("Allow", func(t *testing.T) { testAllow(t, c) })
	t.Run("KeyTTLs", func(t *testing.T) { testKeyTTLs(t, c) })
	t.Run("CorruptTicket", func(t *testing.T) { testCorruptTicket(t, c) })
	t.Run("EraseLinks", func(t *testing.T) { testEraseLinks(t, c) })
	t.Run("EraseLeavesNoTrace", func(t *testing.T) { testEraseLeavesNoTrace(t, c) })
	t.Run("RotateRefreshOfGoneUser", func(t *testing.T) { testRotateRefreshOfGoneUser(t, c) })
	t.Run("EraseBusyUser", func(t *testing.T) { testEraseBusyUser(t, c) })
	t.Run("FaceTimeOfPreviousRelease", func(t *testing.T) { testFaceTimeOfPreviousRelease(t, c) })
	t.Run("CommandsPerFlow", func(t *testing.T) { testCommandsPerFlow(t, srv) })
	t.Run("Connect", func(t *testing.T) {
		cc, err := redisstore.Connect(srv.URL + "/3")
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		rc, ok := cc.(*redis.Client)
		if !ok {
			t.Fatalf("Connect(%s): got %T, want *redis.Client", srv.URL, cc)
		}
		if o := rc.Options(); o.DB != 3 || !o.ContextTimeoutEnabled {
			t.Errorf("options: DB %d, ContextTimeoutEnabled %v; want 3, true", o.DB, o.ContextTimeoutEnabled)
		}
		if err := redisstore.New(cc, redisstore.Options{}).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// TestDeadline: a client from Connect gives up at the context's deadline,
// not at its own read timeout, when Redis does not answer.
func TestDeadline(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() { // a server that reads and never answers
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, conn)
			}()
			t.Cleanup(func() { conn.Close() })
		}
	}()
	c, err := redisstore.Connect("redis://" + ln.Addr().String() + "?read_timeout=10s&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := redisstore.New(c, redisstore.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Ticket(ctx, "x")
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Fatalf("Ticket against a silent server: %v after %v; want an error at the 100ms deadline", err, took)
	}
}

func TestConnectErrors(t *testing.T) {
	for _, raw := range []string{
		"http://user:s3cr%40t@localhost:6379",
		"redis://user:s3cr%40t@localhost:6379/notadb",
		"redis+cluster://user:s3cr%40t@localhost:6379?addr=h:1&bogus=1",
		"redis://user:s3cr@t@local host:port",
		"user:s3cr@t@localhost:6379",
		"",
	} {
		c, err := redisstore.Connect(raw)
		if err == nil {
			c.Close()
			t.Errorf("Connect(%q): no error", raw)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cr") || !strings.HasPrefix(msg, "redisstore: ") {
			t.Errorf("Connect(%q): error %q shows the password or lacks the package prefix", raw, msg)
		}
	}
}

func TestConnectClusterOptions(t *testing.T) {
	c, err := redisstore.Connect("rediss+cluster://u:pw@h1:7001?addr=h2:7002&addr=h3:7003")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("got %T, want *redis.ClusterClient", c)
	}
	o := cc.Options()
	if got := strings.Join(o.Addrs, ","); got != "h1:7001,h2:7002,h3:7003" || o.TLSConfig == nil || o.Password != "pw" || !o.ContextTimeoutEnabled {
		t.Errorf("options: addrs %s, TLS %v, password %q, ContextTimeoutEnabled %v", got, o.TLSConfig != nil, o.Password, o.ContextTimeoutEnabled)
	}
}

func TestChannelNames(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"}) // never dialled
	defer c.Close()
	for _, tc := range []struct{ prefix, id, want string }{
		{"lh", "AbC-_123", "lh:{t:AbC-_123}:v"},
		{"", "AbC-_123", "lh:{t:AbC-_123}:v"},
		{"app1", "x", "app1:{t:x}:v"},
		{"lh", "a:b", "lh:{t:a:b}:v"},
		{"lh", "x}y", "lh:{t:x}y}:v"},
	} {
		s := redisstore.New(c, redisstore.Options{Prefix: tc.prefix})
		got := s.TicketChannel(tc.id)
		if got != tc.want {
			t.Errorf("TicketChannel(%q) with prefix %q = %q, want %q", tc.id, tc.prefix, got, tc.want)
		}
		if id, ok := s.TicketID(got); !ok || id != tc.id {
			t.Errorf("TicketID(%q) with prefix %q = %q, %v; want %q", got, tc.prefix, id, ok, tc.id)
		}
	}
	s := redisstore.New(c, redisstore.Options{})
	for _, ch := range []string{"other:{t:x}:v", "lh:{t:x}", "lh:{t:}:v", "lh:{u:x}:v", "lh:{t:a}:v2", "other"} {
		if id, ok := s.TicketID(ch); ok {
			t.Errorf("TicketID(%q) = %q, true; want false", ch, id)
		}
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t)
	c := cl.Client(t)

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, notify authcore.Notifier) authcore.Store {
			prefix := newPrefix()
			s := redisstore.New(c, redisstore.Options{Prefix: prefix})
			if notify == nil {
				return s
			}
			// Sharded channels have no patterns: subscribe to each
			// ticket's channel as it is created.
			return &subscribing{Store: s, t: t, c: c, notify: notify}
		})
	})
	t.Run("TokenCache", func(t *testing.T) {
		storetest.RunTokenCache(t, func(t *testing.T) wechat.TokenCache {
			return redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
		})
	})
	t.Run("Mailbox", func(t *testing.T) {
		storetest.RunMailbox(t, func(t *testing.T) sms.Mailbox {
			return redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
		})
	})
	t.Run("Publish", func(t *testing.T) { testPublish(t, c, c.SSubscribe) })
	t.Run("Allow", func(t *testing.T) { testAllow(t, c) })
	t.Run("EraseLinks", func(t *testing.T) { testEraseLinks(t, c) })
	t.Run("EraseLeavesNoTrace", func(t *testing.T) { testEraseLeavesNoTrace(t, c) })
	t.Run("SameSlot", func(t *testing.T) {
		ctx := context.Background()
		for _, keys := range [][]string{
			{"lh:{t:AbC-_123}", redisstore.New(c, redisstore.Options{}).TicketChannel("AbC-_123")},
			{"lh:{u:u_1}", "lh:{u:u_1}:s:fam", "lh:{u:u_1}:s:fam:used:22dd", "lh:{u:u_1}:ids", "lh:{u:u_1}:pd", "lh:{u:u_1}:pwd", "lh:{u:u_1}:audit",
				"lh:{u:u_1}:sessions", "lh:{u:u_1}:refs"},
		} {
			want := c.ClusterKeySlot(ctx, keys[0]).Val()
			for _, k := range keys[1:] {
				if got := c.ClusterKeySlot(ctx, k).Val(); got != want {
					t.Errorf("slot of %s = %d, slot of %s = %d; want one slot", k, got, keys[0], want)
				}
			}
		}
	})
	t.Run("Connect", func(t *testing.T) {
		cc, err := redisstore.Connect(cl.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if _, ok := cc.(*redis.ClusterClient); !ok {
			t.Fatalf("Connect(%s): got %T, want *redis.ClusterClient", cl.URL, cc)
		}
		ctx := context.Background()
		s := redisstore.New(cc, redisstore.Options{Prefix: newPrefix()})
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		var masters atomic.Int32
		if err := cc.(*redis.ClusterClient).ForEachMaster(ctx, func(context.Context, *redis.Client) error {
			masters.Add(1)
			return nil
		}); err != nil || masters.Load() != 3 {
			t.Fatalf("masters: %d, %v; want 3", masters.Load(), err)
		}
		// Tickets spread over the slots, so this reaches every master.
		now := time.Now()
		ref := login(t, s, now)
		for range 20 {
			tk := newTicket(now)
			if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
				t.Fatal(err)
			}
			if res, err := s.TransitionAs(ctx, ref, 0, scanOf(tk, now)); err != nil || !res.Moved {
				t.Fatalf("scan: moved %v, %v", res.Moved, err)
			}
		}
	})
}

// subscribing is a Store that subscribes to each ticket's sharded channel
// before creating the ticket, and forwards its messages to notify.
type subscribing struct {
	*redisstore.Store
	t      *testing.T
	c      *redis.ClusterClient
	notify authcore.Notifier
}

func (s *subscribing) CreateTicket(ctx context.Context, rec authcore.TicketRecord, retention time.Duration) error {
	ps := s.c.SSubscribe(ctx, s.TicketChannel(rec.ID))
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return err
	}
	forward(s.t, ps, s.Store, s.notify)
	return s.Store.CreateTicket(ctx, rec, retention)
}

func newTicket(now time.Time) authcore.TicketRecord {
	return authcore.TicketRecord{
		ID: authcore.NewTicketID(), State: authcore.StatePending, Version: 1,
		Trail: []authcore.State{authcore.StatePending}, ExpiresAt: now.Add(2 * time.Minute).Truncate(time.Second),
		CreatedAt: now, WatchSecretHash: sha256.Sum256([]byte("secret")), DPoPJKT: "0sS7nYa4cUXwB3SmKBM5EE0yAXcxCYv5ZKfgMtCVsKM",
		ClientIP: netip.MustParseAddr("203.0.113.7"),
		Requester: authcore.Requester{IP: "203.0.113.7", Location: "Shanghai, CN", Device: "Chrome on Windows",
			UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
			CreatedAt: now.UTC().Truncate(time.Second)},
	}
}

// login stores user "u1" (if it is not there yet) and a new session of
// theirs, and returns its access token's reference.
func login(t *testing.T, s *redisstore.Store, now time.Time) authcore.TokenRef {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "o1", UnionID: "un1"}, authcore.Profile{}, authcore.User{ID: "u1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sess := session(authcore.NewTicketID(), now)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	return sess.AccessRef()
}

// scanOf is the scan of tk at now.
func scanOf(tk authcore.TicketRecord, now time.Time) authcore.PhoneMove {
	return authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now}
}

// testPublish: each move publishes exactly the ticket it wrote on the
// ticket's channel, and a refused move publishes nothing.
func testPublish(t *testing.T, c redis.UniversalClient, subscribe func(context.Context, ...string) *redis.PubSub) {
	ctx := context.Background()
	s := redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
	now := time.Now()
	tk := newTicket(now)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}
	channel := s.TicketChannel(tk.ID)
	ps := subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	// next checks that the next message announces want.
	next := func(want authcore.TicketRecord) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := ps.ReceiveMessage(rctx)
		if err != nil {
			t.Fatalf("no message: %v", err)
		}
		if m.Channel != channel {
			t.Fatalf("message on %q, want %q", m.Channel, channel)
		}
		got, err := s.DecodeTicket(tk.ID, m.Payload)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("message decodes to %+v (%v); want the ticket written, %+v", got, err, want)
		}
	}
	ref := login(t, s, now)
	res, err := s.TransitionAs(ctx, ref, 0, scanOf(tk, now))
	if err != nil || !res.Moved {
		t.Fatalf("scan: moved %v, %v", res.Moved, err)
	}
	next(res.Ticket)
	if res, err := s.TransitionAs(ctx, ref, 0, scanOf(tk, now)); res.Moved || err != nil {
		t.Fatalf("second scan: moved %v, %v; want refused", res.Moved, err)
	}
	stale := authcore.Redemption{TicketID: tk.ID, FromVersion: 1, Session: session(authcore.NewTicketID(), now), Now: now}
	if _, err := s.RedeemTicket(ctx, stale); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("redeem of a stale version: got %v, want ErrConflict", err)
	}
	confirm := authcore.PhoneMove{ID: tk.ID, From: authcore.StateScanned, To: authcore.StateConfirmed, Now: now}
	if res, err = s.TransitionAs(ctx, ref, 0, confirm); !res.Moved || err != nil {
		t.Fatalf("confirm: moved %v, %v", res.Moved, err)
	}
	next(res.Ticket) // after two refused moves and a good one
}

func testAllow(t *testing.T, c redis.UniversalClient) {
	ctx := context.Background()
	s := redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
	const per = 300 * time.Millisecond
	for i := range 3 {
		if ok, retry, err := s.Allow(ctx, "1.2.3.4", 3, per); !ok || retry != 0 || err != nil {
			t.Fatalf("event %d of 3: got %v, %v, %v; want allowed", i+1, ok, retry, err)
		}
	}
	// The window's time left is read inside Redis, some time after this:
	// counting from before the call, the window cannot end sooner than
	// retryAfter says, however late the answer arrives.
	refusedAt := time.Now()
	ok, retry, err := s.Allow(ctx, "1.2.3.4", 3, per)
	if ok || err != nil || retry <= 0 || retry > per {
		t.Fatalf("event 4 of 3: got %v, %v, %v; want refused with 0 < retryAfter <= %v", ok, retry, err, per)
	}
	if ok, _, _ := s.Allow(ctx, "5.6.7.8", 3, per); !ok {
		t.Fatal("another key shares the window")
	}
	// Limited reads the window without counting.
	for range 2 {
		if left, err := s.Limited(ctx, "1.2.3.4", 3); err != nil || left <= 0 || left > per {
			t.Fatalf("Limited of a full window: %v, %v; want 0 < left <= %v", left, err, per)
		}
		if left, err := s.Limited(ctx, "5.6.7.8", 2); err != nil || left != 0 {
			t.Fatalf("Limited(limit 2) of a window with 1 event: %v, %v; want 0", left, err)
		}
	}
	if left, err := s.Limited(ctx, "never-counted", 1); err != nil || left != 0 {
		t.Fatalf("Limited of no window: %v, %v; want 0", left, err)
	}
	// Forget empties a window; the others keep theirs.
	if ok, _, _ := s.Allow(ctx, "forgotten", 1, per); !ok {
		t.Fatal("first event of a fresh key refused")
	}
	if err := s.Forget(ctx, "forgotten"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.Allow(ctx, "forgotten", 1, per); !ok {
		t.Fatal("Forget kept the window's count")
	}
	if left, _ := s.Limited(ctx, "1.2.3.4", 3); left <= 0 {
		t.Fatal("Forget of one key emptied another")
	}
	if ok, _, _ := s.Allow(ctx, "zero", 0, per); ok {
		t.Fatal("limit 0 allowed an event")
	}
	// Ask again until the window ends (Redis expires it in real time):
	// allowed again, and not before retryAfter said.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		ok, _, err := s.Allow(ctx, "1.2.3.4", 3, per)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if waited := time.Since(refusedAt); waited < retry-20*time.Millisecond {
				t.Fatalf("allowed again after %v, before the %v retryAfter said", waited, retry)
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("still refused 5 s after a 300 ms window")
		}
	}
}

// testKeyTTLs: after a full use of the store, every key has a TTL except
// the long-lived ones (users, identities, unionids, WeChat session keys),
// and the TTLs are the ones the design says.
func testKeyTTLs(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	now := time.Now()
	tk := newTicket(now)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}
	ref := login(t, s, now) // user u1, with identity o1 and unionid un1
	if res, err := s.TransitionAs(ctx, ref, 0, scanOf(tk, now)); err != nil || !res.Moved {
		t.Fatalf("scan: moved %v, %v", res.Moved, err)
	}
	if err := s.PutSessionKey(ctx, "o1", "k", sessionExpiry(now)); err != nil {
		t.Fatal(err)
	}
	family := authcore.NewTicketID()
	sess := session(family, now)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrincipalByAccess(ctx, sess.AccessRef(), now.Add(time.Minute), 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	next := session(family, now.Add(time.Minute))
	if _, err := s.RotateRefresh(ctx, sess.RefreshRef(), next, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FirstUse(ctx, "jti", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Allow(ctx, "ip", 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPersonalData(ctx, "u1", "phone", "sealed"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, authcore.AuditEntry{Time: now, UserID: "u1", Actor: "user", Action: "collect", Field: "phone"}); err != nil {
		t.Fatal(err)
	}
	face := authcore.FaceVerification{VerifyID: "fv1", UserID: "u1", ExpiresAt: now.Add(5 * time.Minute)}
	if err := s.PutFaceVerification(ctx, face); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSessionStepUp(ctx, next.AccessRef(), authcore.MethodFace, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}

	want := map[string]time.Time{ // expiry per key; zero: none
		prefix + ":{t:" + tk.ID + "}":      tk.ExpiresAt.Add(time.Minute),
		prefix + ":{u:u1}":                 {},
		prefix + ":{u:u1}:ids":             {},
		prefix + ":{u:u1}:pd":              {},
		prefix + ":{u:u1}:sessions":        sessionExpiry(now.Add(time.Minute)), // the latest session's
		prefix + ":{u:u1}:refs":            tk.ExpiresAt.Add(time.Hour),         // the scanned ticket's, plus an hour
		prefix + ":{u:u1}:audit":           {},                                  // compliance records: no TTL
		prefix + ":{fv:fv1}":               face.ExpiresAt,
		prefix + ":{i:wechat:o1}":          {},
		prefix + ":{un:un1}":               {},
		prefix + ":{k:o1}":                 sessionExpiry(now),
		prefix + ":{u:u1}:s:" + ref.Family: sessionExpiry(now),
		prefix + ":{u:u1}:s:" + family:     next.RefreshExpiresAt,
		prefix + ":{u:u1}:s:" + family + ":used:" + fmt.Sprintf("%x", sess.RefreshHash): sess.RefreshExpiresAt,
		prefix + ":once:jti": now.Add(time.Minute),
		prefix + ":rate:ip":  now.Add(time.Minute),
	}
	keys, err := c.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Errorf("keys: got %q, want %d keys", keys, len(want))
	}
	for _, k := range keys {
		exp, ok := want[k]
		if !ok {
			t.Errorf("unexpected key %s", k)
			continue
		}
		ms, err := c.PExpireTime(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case exp.IsZero() && ms != -1:
			t.Errorf("%s: expires at %v, want no TTL", k, time.UnixMilli(int64(ms/time.Millisecond)))
		case !exp.IsZero():
			got := time.UnixMilli(int64(ms / time.Millisecond))
			if d := got.Sub(exp); d < -time.Second || d > time.Second {
				t.Errorf("%s: expires at %v, want %v", k, got, exp)
			}
		}
	}
}

// session is a session of user u1 in family, created at now.
func session(family string, now time.Time) authcore.SessionRecord {
	return authcore.SessionRecord{
		ID: authcore.NewTicketID(), FamilyID: family, UserID: "u1",
		AccessHash: sha256.Sum256([]byte("a" + authcore.NewTicketID())), RefreshHash: sha256.Sum256([]byte("r" + authcore.NewTicketID())),
		AccessExpiresAt: now.Add(30 * time.Minute), RefreshExpiresAt: sessionExpiry(now),
		CreatedAt: now, AMR: []string{"wx"}, Provider: "wechat", Subject: "o1", UnionID: "un1",
	}
}

// sessionExpiry is the refresh expiry of a session created at now.
func sessionExpiry(now time.Time) time.Time { return now.Add(7 * 24 * time.Hour) }

// testCorruptTicket: a value the store did not write is an error, never a
// state.
func testCorruptTicket(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	ref := login(t, s, time.Now())
	for _, v := range []string{"garbage", "1:1", "1:21:2", "1:11:1"} {
		c.Set(ctx, prefix+":{t:bad}", v, time.Minute)
		if _, err := s.Ticket(ctx, "bad"); err == nil || authcore.KindOf(err) != authcore.KindInternal {
			t.Errorf("Ticket(%q): got %v, want an internal error", v, err)
		}
		res, err := s.TransitionAs(ctx, ref, 0, authcore.PhoneMove{ID: "bad", From: authcore.StatePending, To: authcore.StateScanned, Now: time.Now()})
		if err == nil || authcore.KindOf(err) != authcore.KindInternal || res.Moved {
			t.Errorf("TransitionAs(%q): moved %v, %v; want an internal error", v, res.Moved, err)
		}
		redeem := authcore.Redemption{TicketID: "bad", FromVersion: 1, Session: session(authcore.NewTicketID(), time.Now()), Now: time.Now()}
		if _, err := s.RedeemTicket(ctx, redeem); err == nil || authcore.KindOf(err) != authcore.KindInternal {
			t.Errorf("RedeemTicket(%q): got %v, want an internal error", v, err)
		}
	}
}

// countingHook counts the commands a client sends and its round trips.
type countingHook struct {
	mu              sync.Mutex
	commands, trips int
	names           map[string]int
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		h.mu.Lock()
		h.trips -= len(cmds) - 1
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}
func (h *countingHook) count(cmd redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands++
	h.trips++
	h.names[cmd.Name()]++
}

// testCommandsPerFlow logs what one QR login costs in Redis (issue 3):
// the commands the store sends and, from INFO commandstats, the commands
// Redis runs, those inside scripts included.
func testCommandsPerFlow(t *testing.T, srv *redistest.Server) {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	hook := &countingHook{names: map[string]int{}}
	c.AddHook(hook)
	s := redisstore.New(c, redisstore.Options{Prefix: newPrefix()})
	ref := login(t, s, time.Now())

	flow := func() {
		now := time.Now()
		tk := newTicket(now)
		if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
			t.Fatal(err)
		}
		// Scan and confirm as the phone makes them, redeem as the desktop
		// does (the core's read of the ticket before it is not counted).
		for _, m := range []authcore.PhoneMove{
			scanOf(tk, now),
			{ID: tk.ID, From: authcore.StateScanned, To: authcore.StateConfirmed, Now: now},
		} {
			if res, err := s.TransitionAs(ctx, ref, 0, m); !res.Moved || err != nil {
				t.Fatalf("%s: moved %v, %v", m.To, res.Moved, err)
			}
		}
		sess := session(authcore.NewTicketID(), now)
		if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: tk.ID, FromVersion: 3, Session: sess, Now: now}); err != nil {
			t.Fatal(err)
		}
		// A request a minute later: the access expiry slides.
		if _, err := s.PrincipalByAccess(ctx, sess.AccessRef(), now.Add(time.Minute), 30*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	flow() // loads the scripts, so the measured flow runs them by digest

	stats := func() map[string]int {
		info, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !ok {
				continue
			}
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			m[strings.TrimPrefix(name, "cmdstat_")] = n
		}
		return m
	}
	before := stats()
	hook.mu.Lock()
	hook.commands, hook.trips, hook.names = 0, 0, map[string]int{}
	hook.mu.Unlock()
	flow()
	sent, trips, names := hook.commands, hook.trips, fmt.Sprint(hook.names)
	after := stats()
	total, detail := 0, []string{}
	for name, n := range after {
		if d := n - before[name]; d > 0 && name != "info" {
			total += d
			detail = append(detail, fmt.Sprintf("%s=%d", name, d))
		}
	}
	t.Logf("one QR login (create, scan, confirm, redeem with its session, one authenticated request): "+
		"the store sends %d commands in %d round trips %v; Redis runs %d commands including those inside scripts %v",
		sent, trips, names, total, detail)
	if sent != 5 {
		t.Errorf("the flow sent %d commands, want 5 (one per store call)", sent)
	}
}

// TestMemoryPerTicket measures what a waiting ticket costs in Redis.
func TestMemoryPerTicket(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	ctx := context.Background()
	s := redisstore.New(c, redisstore.Options{})
	used := func() int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("no used_memory in INFO memory")
		return 0
	}
	const n = 10000
	now := time.Now()
	tickets := make([]authcore.TicketRecord, n)
	for i := range tickets {
		tickets[i] = newTicket(now)
	}
	before := used()
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := s.CreateTicket(ctx, tickets[i], time.Minute); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	after := used()
	per := float64(after-before) / n
	one, _ := c.MemoryUsage(ctx, "lh:{t:"+tickets[0].ID+"}").Result()
	val, _ := c.Get(ctx, "lh:{t:"+tickets[0].ID+"}").Result()
	t.Logf("memory per waiting ticket: %.0f bytes (used_memory delta over %d tickets); MEMORY USAGE of one: %d bytes; value: %d bytes",
		per, n, one, len(val))
	if per <= 0 || per > 2048 {
		t.Errorf("memory per waiting ticket: %.0f bytes, want 0 < it <= 2 KiB", per)
	}
}

// BenchmarkRedisstore measures the store's hot paths against a real
// redis-server on loopback (one connection pool, one caller at a time:
// round-trip latency, not Redis throughput).
func BenchmarkRedisstore(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	storetest.Bench(b, redisstore.New(s.Client(), redisstore.Options{}))
}

// testTokenCacheKeys: the access token and the lease live where the key
// layout says, with the TTLs it says.
func testTokenCacheKeys(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := s.PutAccessToken(ctx, "wx1", "tok", exp); err != nil {
		t.Fatal(err)
	}
	ms, err := c.PExpireTime(ctx, prefix+":{at:wx1}").Result()
	if err != nil || time.UnixMilli(int64(ms/time.Millisecond)).Sub(exp).Abs() > time.Second {
		t.Errorf("%s:{at:wx1} expires at %v (%v), want %v", prefix, ms, err, exp)
	}
	release, ok, err := s.TryLock(ctx, "at-refresh:wx1", 10*time.Second)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ttl := c.PTTL(ctx, prefix+":{lock:at-refresh:wx1}").Val(); ttl <= 9*time.Second || ttl > 10*time.Second {
		t.Errorf("lock TTL = %v, want about 10s", ttl)
	}
	release()
	if n := c.Exists(ctx, prefix+":{lock:at-refresh:wx1}").Val(); n != 0 {
		t.Error("release left the lock key")
	}
	c.Set(ctx, prefix+":{at:wx2}", "garbage", time.Minute)
	if _, _, err := s.AccessToken(ctx, "wx2"); err == nil || strings.Contains(err.Error(), "garbage") {
		t.Errorf("corrupt token value: got %v, want an error that does not show the value", err)
	}
}

// testEraseLinks: erasure deletes only the links that still point at the
// user (a stale name in its link set is left alone), a login repairs a
// link to an erased user (an interrupted or raced erasure) by creating a
// new user, and a login records the links of a user made before link sets
// existed, so that it can be erased.
func testEraseLinks(t *testing.T, c redis.UniversalClient) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	key := func(k string) string { return prefix + ":" + k }
	login := func(id authcore.Identity, newID string, wantCreated bool) string {
		t.Helper()
		u, created, err := s.UpsertIdentity(ctx, id, authcore.Profile{}, authcore.User{ID: newID, CreatedAt: time.Now()})
		if err != nil || created != wantCreated {
			t.Fatalf("UpsertIdentity(%+v) = %s, created %v, %v; want created %v", id, u.ID, created, err, wantCreated)
		}
		return u.ID
	}
	exists := func(k string) bool { return c.Exists(ctx, key(k)).Val() == 1 }

	// A stale name: the victim's link set names the bystander's identity.
	login(authcore.Identity{Provider: "wechat", Subject: "o-a", UnionID: "un-a"}, "ua", true)
	login(authcore.Identity{Provider: "wechat", Subject: "o-b"}, "ub", true)
	for _, k := range []string{"o-a", "o-b"} {
		if err := s.PutSessionKey(ctx, k, "sk-"+k, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	c.SAdd(ctx, key("{u:ua}:ids"), key("{i:wechat:o-b}"))
	if err := s.EraseUser(ctx, "ua"); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	for _, k := range []string{"{u:ua}", "{u:ua}:ids", "{i:wechat:o-a}", "{un:un-a}", "{k:o-a}"} {
		if exists(k) {
			t.Errorf("after erasure: %s still exists", k)
		}
	}
	if got := c.Get(ctx, key("{i:wechat:o-b}")).Val(); got != "ub" {
		t.Errorf("bystander's identity: got %q, want ub", got)
	}
	if !exists("{k:o-b}") {
		t.Error("bystander's session key deleted")
	}

	// Links to a user that is gone.
	c.Set(ctx, key("{i:wechat:o-ghost}"), "ghost", 0)
	c.Set(ctx, key("{un:un-ghost}"), "ghost", 0)
	if got := login(authcore.Identity{Provider: "wechat", Subject: "o-ghost", UnionID: "un-ghost"}, "u-new", true); got != "u-new" {
		t.Fatalf("login with links to an erased user: got user %s, want u-new", got)
	}
	c.Set(ctx, key("{un:un-ghost2}"), "ghost", 0)
	if got := login(authcore.Identity{Provider: "wechat", Subject: "o-ghost2", UnionID: "un-ghost2"}, "u-new2", true); got != "u-new2" {
		t.Fatalf("login by a unionid of an erased user: got user %s, want u-new2", got)
	}
	for k, want := range map[string]string{"{i:wechat:o-ghost}": "u-new", "{un:un-ghost}": "u-new", "{i:wechat:o-ghost2}": "u-new2", "{un:un-ghost2}": "u-new2"} {
		if got := c.Get(ctx, key(k)).Val(); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}

	// A user from before link sets: the next login records its links.
	c.HSet(ctx, key("{u:legacy}"), "n", "old", "a", "", "c", "1700000000000")
	c.Set(ctx, key("{i:wechat:o-legacy}"), "legacy", 0)
	login(authcore.Identity{Provider: "wechat", Subject: "o-legacy"}, "unused", false)
	if err := s.EraseUser(ctx, "legacy"); err != nil {
		t.Fatalf("EraseUser(legacy): %v", err)
	}
	if exists("{i:wechat:o-legacy}") || exists("{u:legacy}") {
		t.Error("legacy user's identity or record survived erasure")
	}
}

// testEraseLeavesNoTrace: after EraseUser no key under the test's prefix
// names the user (id, openid, unionid, nickname) in its name or its value,
// except the user's audit trail, which outlives erasure by design.
func testEraseLeavesNoTrace(t *testing.T, c redis.UniversalClient) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	tr := storetest.EraseEverywhere(t, s)
	var keys []string
	collect := func(ctx context.Context, n *redis.Client) error {
		ks, err := n.Keys(ctx, prefix+":*").Result()
		keys = append(keys, ks...)
		return err
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return collect(ctx, n)
		})
	} else {
		err = collect(ctx, c.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 5 {
		t.Fatalf("only %d keys under %s: the bystander's records are missing, so this shows nothing", len(keys), prefix)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ":audit") && strings.Contains(k, "{u:"+tr.UserID+"}") {
			continue
		}
		var v any
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			v = c.Get(ctx, k).Val()
		case "hash":
			v = c.HGetAll(ctx, k).Val()
		case "set":
			v = c.SMembers(ctx, k).Val()
		case "zset":
			v = c.ZRange(ctx, k, 0, -1).Val()
		case "list":
			v = c.LRange(ctx, k, 0, -1).Val()
		default:
			t.Errorf("%s: unexpected type %s", k, typ)
		}
		text := k + " " + fmt.Sprint(v)
		for _, trace := range tr.All() {
			if strings.Contains(text, trace) {
				t.Errorf("after erasure %q remains: %.300s", trace, text)
			}
		}
	}
}

// testRotateRefreshOfGoneUser: a refresh whose user is gone (but whose
// session key is still there) is refused and writes nothing.
func testRotateRefreshOfGoneUser(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	now := time.Now()
	ref := login(t, s, now)
	sess := session(ref.Family, now)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	c.Del(ctx, prefix+":{u:u1}")
	before := c.Keys(ctx, prefix+":*").Val()
	if _, err := s.RotateRefresh(ctx, sess.RefreshRef(), session(ref.Family, now), now); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("RotateRefresh of a gone user: %v, want ErrNotFound", err)
	}
	if after := c.Keys(ctx, prefix+":*").Val(); len(after) != len(before) {
		t.Errorf("the refused rotation changed the keys: %q, then %q", before, after)
	}
}

// testEraseBusyUser: a user with more session keys than one Lua call can
// take as arguments is erased whole.
func testEraseBusyUser(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	now := time.Now()
	login(t, s, now)
	family := authcore.NewTicketID()
	sess := session(family, now)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	for range 9000 { // each rotation leaves a consumed mark
		next := session(family, now)
		if _, err := s.RotateRefresh(ctx, sess.RefreshRef(), next, now); err != nil {
			t.Fatal(err)
		}
		sess = next
	}
	if err := s.EraseUser(ctx, "u1"); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	if keys := c.Keys(ctx, prefix+":{u:u1}:s:*").Val(); len(keys) != 0 {
		t.Errorf("%d session keys and marks left, e.g. %s", len(keys), keys[0])
	}
}

// TestUnnotedIdentities: identities linked before the store noted them in
// the user hash are listed, counted and unlinked like noted ones.
func TestUnnotedIdentities(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	ctx := context.Background()
	created := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli()).UTC()
	wx := authcore.Identity{Provider: "wechat", Subject: "old-o1"}
	phone := authcore.Identity{Provider: "phone", Subject: "+8613800138000"}
	u, _, err := s.UpsertIdentity(ctx, wx, authcore.Profile{}, authcore.User{ID: "old-u", CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "other"}, authcore.Profile{}, authcore.User{ID: "other-u", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkIdentity(ctx, phone, u.ID); err != nil {
		t.Fatal(err)
	}
	// As an older version left them: no notes.
	userKey := prefix + ":{u:old-u}"
	if err := c.HDel(ctx, userKey, "i:wechat:old-o1", "i:phone:+8613800138000", "iv").Err(); err != nil {
		t.Fatal(err)
	}
	// A stale name in the link set (an identity that moved on) is skipped.
	if err := c.SAdd(ctx, userKey+":ids", prefix+":{i:wechat:other}").Err(); err != nil {
		t.Fatal(err)
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || !ids[0].LinkedAt.Equal(created) || !ids[1].LinkedAt.Equal(created) {
		t.Fatalf("identities of a user without notes: %+v, want wechat and phone linked at %v", ids, created)
	}
	if err := c.HDel(ctx, userKey, "i:wechat:old-o1", "iv").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlinkIdentity(ctx, wx, u.ID); err != nil {
		t.Fatalf("UnlinkIdentity of an identity without a note: %v", err)
	}
	if err := s.UnlinkIdentity(ctx, phone, u.ID); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("UnlinkIdentity of the last: %v, want ErrConflict", err)
	}
	if owner, err := c.Get(ctx, prefix+":{i:wechat:old-o1}").Result(); err == nil {
		t.Errorf("the unlinked identity still points at %s", owner)
	}
}

// testFaceTimeOfPreviousRelease: a session whose face check a release
// that kept face times only recorded (its mark_face.lua set "amr" and
// "fa", unix ms) reads as a face step-up, which a refresh carries over
// and a later check of another method leaves as it is; a face check
// marked now is in "fa" too, where a node of that release reads it.
func testFaceTimeOfPreviousRelease(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	prefix := newPrefix()
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	now := time.Now().Truncate(time.Millisecond)
	ref := login(t, s, now)
	key := prefix + ":{u:u1}:s:" + ref.Family
	faceAt := now.Add(-time.Minute)
	if err := c.HSet(ctx, key, "amr", `["wx","face"]`, "fa", strconv.FormatInt(faceAt.UnixMilli(), 10)).Err(); err != nil {
		t.Fatal(err)
	}
	p, err := s.PrincipalByAccess(ctx, ref, now, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]time.Time{authcore.MethodFace: faceAt}; !sameTimes(p.Session.StepUps, want) || !reflect.DeepEqual(p.Session.AMR, []string{"wx", "face"}) {
		t.Fatalf("a session with the previous release's face time: AMR %q step-ups %v, want [wx face] %v", p.Session.AMR, p.Session.StepUps, want)
	}
	if f := p.Facts(); f.FaceAt == nil || !f.FaceAt.Equal(faceAt) {
		t.Errorf("its facts: face_at %v, want %v", f.FaceAt, faceAt)
	}

	vbmAt := now.Add(time.Second)
	if err := s.MarkSessionStepUp(ctx, ref, "vbm", vbmAt); err != nil {
		t.Fatal(err)
	}
	next := session(ref.Family, now.Add(2*time.Second))
	rotated, err := s.RotateRefresh(ctx, p.Session.RefreshRef(), next, now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]time.Time{authcore.MethodFace: faceAt, "vbm": vbmAt}; !sameTimes(rotated.Session.StepUps, want) ||
		!reflect.DeepEqual(rotated.Session.AMR, []string{"wx", "face", "vbm"}) {
		t.Errorf("after a voiceprint check and a refresh: AMR %q step-ups %v, want [wx face vbm] %v", rotated.Session.AMR, rotated.Session.StepUps, want)
	}

	again := now.Add(3 * time.Second)
	if err := s.MarkSessionStepUp(ctx, next.AccessRef(), authcore.MethodFace, again); err != nil {
		t.Fatal(err)
	}
	if got := c.HGet(ctx, key, "fa").Val(); got != strconv.FormatInt(again.UnixMilli(), 10) {
		t.Errorf(`a face check now: "fa" is %q, want %d (what the previous release reads)`, got, again.UnixMilli())
	}
}

// sameTimes reports whether two step-up maps hold the same instants.
func sameTimes(got, want map[string]time.Time) bool {
	if len(got) != len(want) {
		return false
	}
	for m, at := range want {
		if !got[m].Equal(at) {
			return false
		}
	}
	return true
}
