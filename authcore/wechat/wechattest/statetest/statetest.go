// Package statetest is the conformance suite every wechattest.State must
// pass: the in-memory one a Server keeps by default and the Redis one a
// sandbox cluster shares. It is a package of its own so that the hub's
// binary, which links wechattest, does not link the testing package.
package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// Run runs the suite; newState returns an empty State that remembers at
// most maxUsers users.
func Run(t *testing.T, newState func(t *testing.T, maxUsers int) wechattest.State) {
	t.Run("Users", func(t *testing.T) { testUsers(t, newState(t, 10)) })
	t.Run("Bound", func(t *testing.T) { testBound(t, newState(t, 3)) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, newState(t, 10)) })
	t.Run("CodeRace", func(t *testing.T) { testCodeRace(t, newState(t, 10)) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, newState(t, 10)) })
	t.Run("Faces", func(t *testing.T) { testFaces(t, newState(t, 10)) })
}

// str, when and must2 fail t on a method's error and return its results.
func str(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		check(t, err)
		return s
	}
}

func when(t *testing.T) func(time.Time, error) time.Time {
	return func(tm time.Time, err error) time.Time {
		t.Helper()
		check(t, err)
		return tm
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testUsers(t *testing.T, st wechattest.State) {
	ctx := context.Background()
	if got := str(t)(st.SessionKey(ctx, "ann", "o-ann", "k1")); got != "k1" {
		t.Errorf("a new user's session_key %q, want the fresh one k1", got)
	}
	if got := str(t)(st.SessionKey(ctx, "ann", "o-ann", "k2")); got != "k1" {
		t.Errorf("a known user's session_key %q, want k1 kept", got)
	}
	if err := st.SetSessionKey(ctx, "ann", "o-ann", "k3"); err != nil {
		t.Fatal(err)
	}
	if got := str(t)(st.SessionKey(ctx, "ann", "o-ann", "k4")); got != "k3" {
		t.Errorf("session_key after SetSessionKey %q, want k3", got)
	}
	if err := st.SetSessionKey(ctx, "bob {x}", "o-bob", "kb"); err != nil { // SetSessionKey creates too
		t.Fatal(err)
	}
	for openid, want := range map[string]string{"o-ann": "ann", "o-bob": "bob {x}", "o-nobody": ""} {
		if got := str(t)(st.UserByOpenID(ctx, openid)); got != want {
			t.Errorf("UserByOpenID(%q) = %q, want %q", openid, got, want)
		}
	}
}

// testBound creates five users in a State that keeps three: the two used
// least recently are forgotten (a new session_key, no openid), the last
// three kept.
func testBound(t *testing.T, st wechattest.State) {
	ctx := context.Background()
	for i := range 5 {
		name := fmt.Sprint("u", i)
		str(t)(st.SessionKey(ctx, name, "o-"+name, "k-"+name))
	}
	for i := range 5 {
		name := fmt.Sprint("u", i)
		got := str(t)(st.UserByOpenID(ctx, "o-"+name))
		if want := i >= 2; (got == name) != want {
			t.Errorf("UserByOpenID(o-%s) = %q; want the user kept: %v", name, got, want)
		}
	}
	if got := str(t)(st.SessionKey(ctx, "u4", "o-u4", "new")); got != "k-u4" {
		t.Errorf("a kept user's session_key %q, want k-u4", got)
	}
	if got := str(t)(st.SessionKey(ctx, "u0", "o-u0", "new")); got != "new" {
		t.Errorf("a forgotten user's session_key %q, want a fresh one", got)
	}
}

func testCodes(t *testing.T, st wechattest.State) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	check(t, st.IssueCode(ctx, wechattest.CodeKindLogin, "c1", "ann", now.Add(wechattest.CodeLifetime)))
	check(t, st.IssueCode(ctx, wechattest.CodeKindLogin, "c2", "bob", now.Add(time.Minute)))
	type use struct {
		kind, code string
		at         time.Time
		name       string
		used       bool
	}
	for _, u := range []use{
		{wechattest.CodeKindPhone, "c1", now, "", false}, // another kind's code
		{wechattest.CodeKindLogin, "c1", now, "ann", false},
		{wechattest.CodeKindLogin, "c1", now, "", true},
		{wechattest.CodeKindLogin, "c2", now.Add(time.Minute), "", false}, // expired
		{wechattest.CodeKindLogin, "nope", now, "", false},
	} {
		name, used, err := st.UseCode(ctx, u.kind, u.code, u.at)
		if err != nil {
			t.Fatal(err)
		}
		if name != u.name || used != u.used {
			t.Errorf("UseCode(%s, %s, +%v) = %q, used %v; want %q, %v", u.kind, u.code, u.at.Sub(now), name, used, u.name, u.used)
		}
	}
}

// testCodeRace: of many concurrent uses of one code, exactly one wins.
func testCodeRace(t *testing.T, st wechattest.State) {
	ctx := context.Background()
	now := time.Now()
	check(t, st.IssueCode(ctx, wechattest.CodeKindPhone, "race", "ann", now.Add(wechattest.CodeLifetime)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, _, err := st.UseCode(ctx, wechattest.CodeKindPhone, "race", now)
			if err != nil {
				t.Error(err)
			}
			if name != "" {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent uses of one code won, want 1", won)
	}
}

func testTokens(t *testing.T, st wechattest.State) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	exp, cut := now.Add(wechattest.TokenLifetime), now.Add(5*time.Minute)
	if tok, _ := must2(t)(st.CurrentToken(ctx, wechattest.TokenKindStable)); tok != "" {
		t.Fatalf("current token %q of an empty State", tok)
	}
	check(t, st.NewToken(ctx, wechattest.TokenKindStable, "t1", exp, cut))
	if tok, e := must2(t)(st.CurrentToken(ctx, wechattest.TokenKindStable)); tok != "t1" || !e.Equal(exp) {
		t.Errorf("current token %q until %v, want t1 until %v", tok, e, exp)
	}
	later := now.Add(time.Minute)
	check(t, st.NewToken(ctx, wechattest.TokenKindStable, "t2", later.Add(wechattest.TokenLifetime), later.Add(5*time.Minute)))
	if tok, _ := must2(t)(st.CurrentToken(ctx, wechattest.TokenKindStable)); tok != "t2" {
		t.Errorf("current token %q, want t2", tok)
	}
	if e := when(t)(st.TokenExpiry(ctx, "t1")); !e.Equal(later.Add(5 * time.Minute)) {
		t.Errorf("the replaced token expires at %v, want %v (cut)", e, later.Add(5*time.Minute))
	}
	if tok, _ := must2(t)(st.CurrentToken(ctx, wechattest.TokenKindPlain)); tok != "" {
		t.Errorf("current plain token %q; want none: the kinds are independent", tok)
	}
	if e := when(t)(st.TokenExpiry(ctx, "nope")); !e.IsZero() {
		t.Errorf("an unknown token expires at %v, want the zero time", e)
	}
}

func must2(t *testing.T) func(string, time.Time, error) (string, time.Time) {
	return func(s string, tm time.Time, err error) (string, time.Time) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s, tm
	}
}

func testFaces(t *testing.T, st wechattest.State) {
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	if rec, err := st.Face(ctx, "id:v1"); err != nil || rec != nil {
		t.Fatalf("Face of an empty State: %q, %v; want nil, nil", rec, err)
	}
	check(t, st.PutFace(ctx, "id:v1", []byte(`{"a":1}`), until))
	check(t, st.PutFace(ctx, "id:v1", []byte(`{"a":2}`), until))
	if rec, err := st.Face(ctx, "id:v1"); err != nil || string(rec) != `{"a":2}` {
		t.Errorf("Face = %q, %v; want the last record put", rec, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.ClaimFace(ctx, "v1", until)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent claims of one verify_id won, want 1", won)
	}
	if ok, err := st.ClaimFace(ctx, "v2", until); err != nil || !ok {
		t.Errorf("a claim of another verify_id: %v, %v; want true", ok, err)
	}
}
