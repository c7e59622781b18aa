// Package statetest is the conformance suite every oauthsandbox.State must
// pass: the memory one a fake keeps by default and the Redis one a sandbox
// cluster shares. It is a package of its own so that the hub's binary,
// which links oauthsandbox, does not link the testing package.
package statetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// Run runs the suite; newState returns an empty State.
func Run(t *testing.T, newState func(t *testing.T) oauthsandbox.State) {
	t.Run("AppSecret", func(t *testing.T) { testAppSecret(t, newState(t)) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, newState(t)) })
	t.Run("CodeRace", func(t *testing.T) { testCodeRace(t, newState(t)) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, newState(t)) })
}

func testAppSecret(t *testing.T, st oauthsandbox.State) {
	ctx := context.Background()
	for _, c := range []struct{ app, candidate, want string }{
		{"101", "s1", "s1"},
		{"101", "s2", "s1"}, // the first one stays
		{"102", "s3", "s3"}, // apps are independent
	} {
		got, err := st.AppSecret(ctx, c.app, c.candidate)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("AppSecret(%s, %s) = %q, want %q", c.app, c.candidate, got, c.want)
		}
	}
}

// grant returns a grant issued at now for life.
func grant(user string, now time.Time, life time.Duration) oauthsandbox.Grant {
	return oauthsandbox.Grant{
		User: user, App: "101", RedirectURI: "https://app.example/cb?x=1", Scope: "get_user_info",
		Issued: now, Expires: now.Add(life),
	}
}

func sameGrant(a, b oauthsandbox.Grant) bool {
	return a.User == b.User && a.App == b.App && a.RedirectURI == b.RedirectURI && a.Scope == b.Scope &&
		a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires)
}

func testCodes(t *testing.T, st oauthsandbox.State) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	ann, bob := grant("ann {x}", now, 10*time.Minute), grant("bob", now, time.Minute)
	for code, g := range map[string]oauthsandbox.Grant{"c1": ann, "c2": bob} {
		if err := st.IssueCode(ctx, code, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		code   string
		at     time.Time
		status oauthsandbox.CodeStatus
		g      oauthsandbox.Grant
	}{
		{"c1", now, oauthsandbox.CodeOK, ann},
		{"c1", now, oauthsandbox.CodeUsed, ann},
		{"c2", now.Add(time.Minute), oauthsandbox.CodeExpired, bob}, // expiry is exclusive
		{"c2", now.Add(59 * time.Second), oauthsandbox.CodeOK, bob}, // expired is not used
		{"c2", now.Add(time.Hour), oauthsandbox.CodeUsed, bob},      // used wins over expired
		{"nope", now, oauthsandbox.CodeUnknown, oauthsandbox.Grant{}},
	} {
		g, status, err := st.UseCode(ctx, c.code, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if status != c.status || !sameGrant(g, c.g) {
			t.Errorf("UseCode(%s, +%v) = %v, %+v; want %v, %+v", c.code, c.at.Sub(now), status, g, c.status, c.g)
		}
	}
}

// testCodeRace: of many concurrent uses of one code, exactly one wins.
func testCodeRace(t *testing.T, st oauthsandbox.State) {
	ctx := context.Background()
	now := time.Now()
	if err := st.IssueCode(ctx, "race", grant("ann", now, 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 16 {
		wg.Go(func() {
			_, status, err := st.UseCode(ctx, "race", now)
			if err != nil {
				t.Error(err)
			}
			if status == oauthsandbox.CodeOK {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Errorf("%d concurrent uses of one code won, want 1", n)
	}
}

func testTokens(t *testing.T, st oauthsandbox.State) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	g := grant("ann", now, 2*time.Hour)
	g.RedirectURI = ""
	if err := st.IssueToken(ctx, "t1", g); err != nil {
		t.Fatal(err)
	}
	got, found, err := st.Token(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !found || !sameGrant(got, g) {
		t.Errorf("Token(t1) = %+v, %v; want %+v", got, found, g)
	}
	if got.Expired(now.Add(2*time.Hour-time.Millisecond)) || !got.Expired(now.Add(2*time.Hour)) {
		t.Errorf("a token issued for 2h: expired %v just before and %v at 2h; want false, true",
			got.Expired(now.Add(2*time.Hour-time.Millisecond)), got.Expired(now.Add(2*time.Hour)))
	}
	// A token is not a code, nor a code a token.
	if _, status, _ := st.UseCode(ctx, "t1", now); status != oauthsandbox.CodeUnknown {
		t.Errorf("UseCode of a token: %v, want unknown", status)
	}
	if err := st.IssueCode(ctx, "c1", grant("ann", now, time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"c1", "nope"} {
		if _, found, err := st.Token(ctx, tok); err != nil || found {
			t.Errorf("Token(%s): found %v, %v; want not found", tok, found, err)
		}
	}
}
