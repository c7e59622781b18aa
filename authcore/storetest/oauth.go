package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// testOAuthState: a state is kept with every field, taken once, refused
// after its expiry, and a second put of one state value is a conflict.
func testOAuthState(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	ctx := context.Background()
	now := time.Now()
	st := authcore.OAuthState{State: "st-" + authcore.NewTicketID(), Provider: "qq", TicketID: "T-1", Verifier: "verifier",
		Nonce: "nonce", ReturnTo: "https://app.example/done", ExpiresAt: now.Add(10 * time.Minute).Truncate(time.Millisecond)}
	if err := s.PutOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOAuthState(ctx, st); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("a second put of one state: %v, want ErrConflict", err)
	}
	got, err := s.TakeOAuthState(ctx, st.State, now)
	if err != nil || !got.ExpiresAt.Equal(st.ExpiresAt) {
		t.Fatalf("TakeOAuthState: %+v, %v; want %+v", got, err, st)
	}
	got.ExpiresAt = st.ExpiresAt
	if got != st {
		t.Errorf("TakeOAuthState = %+v, want %+v", got, st)
	}
	if _, err := s.TakeOAuthState(ctx, st.State, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a second take: %v, want ErrNotFound", err)
	}
	if _, err := s.TakeOAuthState(ctx, "never-put", now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("an unknown state: %v, want ErrNotFound", err)
	}
	old := authcore.OAuthState{State: "st-" + authcore.NewTicketID(), Provider: "weibo", UserID: "u-1", ExpiresAt: now.Add(time.Minute)}
	if err := s.PutOAuthState(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeOAuthState(ctx, old.State, now.Add(time.Minute)); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a state at its expiry: %v, want ErrNotFound", err)
	}

	// Of callers racing for one state, one gets it.
	race := authcore.OAuthState{State: "st-" + authcore.NewTicketID(), Provider: "qq", ExpiresAt: now.Add(time.Minute)}
	if err := s.PutOAuthState(ctx, race); err != nil {
		t.Fatal(err)
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.TakeOAuthState(ctx, race.State, now); err == nil {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d callers took one state, want 1", won.Load())
	}
}
