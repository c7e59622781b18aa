package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

func codeOf(phone, code string, now time.Time) authcore.OneTimeCode {
	return authcore.OneTimeCode{Phone: phone, Purpose: "login", Hash: sha256.Sum256([]byte(code)),
		ExpiresAt: now.Add(5 * time.Minute), Tries: 5}
}

func check(t *testing.T, s authcore.Store, phone, purpose, code string, now time.Time) bool {
	t.Helper()
	ok, err := s.CheckCode(context.Background(), phone, purpose, sha256.Sum256([]byte(code)), now)
	if err != nil {
		t.Errorf("CheckCode(%s, %s): %v", phone, purpose, err) // not Fatal: may run off the test goroutine
	}
	return ok
}

func put(t *testing.T, s authcore.Store, c authcore.OneTimeCode) {
	t.Helper()
	if err := s.PutCode(context.Background(), c); err != nil {
		t.Fatalf("PutCode: %v", err)
	}
}

// testCodes: a code works once, for its number and purpose only; a newer
// code replaces it; the last wrong try voids it; it expires.
func testCodes(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	now := time.Now()
	const a, b = "+8613800138000", "+8613800138001"

	if check(t, s, a, "login", "111111", now) {
		t.Error("a code that was never sent works")
	}
	put(t, s, codeOf(a, "111111", now))
	if check(t, s, b, "login", "111111", now) {
		t.Error("a code works for another number")
	}
	if check(t, s, a, "bind", "111111", now) {
		t.Error("a code works for another purpose")
	}
	if !check(t, s, a, "login", "111111", now) {
		t.Fatal("the right code does not work")
	}
	if check(t, s, a, "login", "111111", now) {
		t.Error("a code works twice")
	}

	put(t, s, codeOf(a, "222222", now))
	put(t, s, codeOf(a, "333333", now))
	if check(t, s, a, "login", "222222", now) {
		t.Error("a replaced code still works")
	}
	if !check(t, s, a, "login", "333333", now) {
		t.Error("the newer code does not work after a wrong try")
	}

	// Four wrong tries leave the code; the fifth voids it.
	put(t, s, codeOf(a, "444444", now))
	for i := range 4 {
		if check(t, s, a, "login", "000000", now) {
			t.Fatalf("wrong try %d worked", i+1)
		}
	}
	if !check(t, s, a, "login", "444444", now) {
		t.Error("the right code fails after 4 wrong tries; want it to work until the 5th")
	}
	put(t, s, codeOf(a, "555555", now))
	for range 5 {
		check(t, s, a, "login", "000000", now)
	}
	if check(t, s, a, "login", "555555", now) {
		t.Error("the right code works after 5 wrong tries; want it void")
	}

	put(t, s, codeOf(a, "666666", now))
	if check(t, s, a, "login", "666666", now.Add(5*time.Minute)) {
		t.Error("a code works at its expiry")
	}
}

// testCodeRace: of many callers presenting the right code at once, one
// logs in; of many wrong tries at once, no more than the allowed count
// are spent before the code is void.
func testCodeRace(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	now := time.Now()
	const phone = "+8613800138002"
	for round := range 5 {
		put(t, s, codeOf(phone, "123456", now))
		if got := wins(8, func(int) bool { return check(t, s, phone, "login", "123456", now) }); got != 1 {
			t.Fatalf("round %d: %d callers consumed one code, want 1", round, got)
		}
	}
	put(t, s, codeOf(phone, "123456", now))
	wins(8, func(int) bool { return check(t, s, phone, "login", "999999", now) })
	if check(t, s, phone, "login", "123456", now) {
		t.Error("the right code works after 8 concurrent wrong tries")
	}
}
