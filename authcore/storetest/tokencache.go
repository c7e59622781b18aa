package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat"
)

// NewTokenCache makes an empty wechat.TokenCache for one test, on the real
// clock.
type NewTokenCache func(t *testing.T) wechat.TokenCache

// RunTokenCache is the conformance suite of wechat.TokenCache, the shared
// WeChat access_token and the refresh lease.
func RunTokenCache(t *testing.T, newCache NewTokenCache) {
	t.Run("AccessTokens", func(t *testing.T) { testAccessTokens(t, newCache) })
	t.Run("LockIsExclusive", func(t *testing.T) { testLockExclusive(t, newCache) })
	t.Run("LockRace", func(t *testing.T) { testLockRace(t, newCache) })
	t.Run("StaleReleaseKeepsNewHolder", func(t *testing.T) { testStaleRelease(t, newCache) })
}

func testAccessTokens(t *testing.T, newCache NewTokenCache) {
	ctx := context.Background()
	c := newCache(t)
	if _, _, err := c.AccessToken(ctx, "wxapp1"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("AccessToken(unknown app): got %v, want ErrNotFound", err)
	}
	exp := time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)
	if err := c.PutAccessToken(ctx, "wxapp1", "tok-1", exp); err != nil {
		t.Fatalf("PutAccessToken: %v", err)
	}
	tok, got, err := c.AccessToken(ctx, "wxapp1")
	if err != nil || tok != "tok-1" || !got.Equal(exp) {
		t.Fatalf("AccessToken = %q, %v, %v; want tok-1, %v", tok, got, err, exp)
	}
	if _, _, err := c.AccessToken(ctx, "wxapp2"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("AccessToken(other app): got %v, want ErrNotFound", err)
	}
	exp2 := exp.Add(time.Minute)
	if err := c.PutAccessToken(ctx, "wxapp1", "tok-2", exp2); err != nil {
		t.Fatal(err)
	}
	if tok, got, err := c.AccessToken(ctx, "wxapp1"); err != nil || tok != "tok-2" || !got.Equal(exp2) {
		t.Fatalf("after replacing: %q, %v, %v; want tok-2, %v", tok, got, err, exp2)
	}
	// A token that has already expired is as good as none.
	if err := c.PutAccessToken(ctx, "wxapp1", "tok-3", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if tok, _, err := c.AccessToken(ctx, "wxapp1"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("after storing an expired token: %q, %v; want ErrNotFound", tok, err)
	}
}

func testLockExclusive(t *testing.T, newCache NewTokenCache) {
	ctx := context.Background()
	c := newCache(t)
	rel, ok, err := c.TryLock(ctx, "at-refresh:wxapp1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v; want it taken", ok, err)
	}
	if _, ok, err := c.TryLock(ctx, "at-refresh:wxapp1", time.Minute); err != nil || ok {
		t.Fatalf("second TryLock = %v, %v; want refused", ok, err)
	}
	if rel2, ok, err := c.TryLock(ctx, "at-refresh:wxapp2", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock of another name = %v, %v; want it taken", ok, err)
	} else {
		rel2()
	}
	rel()
	rel() // extra calls do nothing
	rel3, ok, err := c.TryLock(ctx, "at-refresh:wxapp1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after release = %v, %v; want it taken", ok, err)
	}
	rel() // a repeated release must not free the new holder's lease
	if _, ok, _ := c.TryLock(ctx, "at-refresh:wxapp1", time.Minute); ok {
		t.Fatal("a repeated release freed the new holder's lease")
	}
	rel3()
	if _, _, err := c.TryLock(ctx, "x", 0); err == nil {
		t.Error("TryLock with ttl 0: no error")
	}
}

func testLockRace(t *testing.T, newCache NewTokenCache) {
	ctx := context.Background()
	c := newCache(t)
	const n = 32
	won := wins(n, func(int) bool {
		_, ok, err := c.TryLock(ctx, "race", time.Minute)
		if err != nil {
			t.Error(err)
		}
		return ok
	})
	if won != 1 {
		t.Fatalf("%d of %d concurrent TryLock calls won, want exactly 1", won, n)
	}
}

// testStaleRelease: a lease ends by itself after its ttl; the holder's
// late release then leaves the next holder's lease alone.
func testStaleRelease(t *testing.T, newCache NewTokenCache) {
	ctx := context.Background()
	c := newCache(t)
	rel, ok, err := c.TryLock(ctx, "short", 30*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	// Wait for the lease to expire: poll until another caller gets it.
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var rel2 func()
	for rel2 == nil {
		select {
		case <-deadline:
			t.Fatal("the 30ms lease never expired")
		case <-tick.C:
		}
		r, ok, err := c.TryLock(ctx, "short", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rel2 = r
		}
	}
	rel() // late: must not free the new holder's lease
	if _, ok, _ := c.TryLock(ctx, "short", time.Minute); ok {
		t.Fatal("the expired holder's release freed the new holder's lease")
	}
	rel2()
	if r, ok, _ := c.TryLock(ctx, "short", time.Minute); !ok {
		t.Fatal("the new holder's release did not free its lease")
	} else {
		r()
	}
}
