package authcore_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

// noLimits lets every password attempt through, so that a benchmark
// measures the check and not the lock.
type noLimits struct{}

func (noLimits) Allow(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return true, 0, nil
}
func (noLimits) Limited(context.Context, string, int) (time.Duration, error) { return 0, nil }
func (noLimits) Forget(context.Context, string) error                        { return nil }

// BenchmarkPasswordLogin compares a wrong password of a user with an
// unknown login: the API promises the same answer in the same time (an
// unknown login is checked against a dummy hash). Each iteration makes one
// of each, interleaved so that a machine's changing load falls on both
// alike, and the benchmark reports the median of each and their ratio
// (unknown/wrong; 1.0 is the same time).
func BenchmarkPasswordLogin(b *testing.B) {
	svc := passwordService(b)
	ctx := context.Background()
	addr := netip.MustParseAddr("192.0.2.1")
	var wrong, unknown []time.Duration
	try := func(login string) time.Duration {
		start := time.Now()
		_, err := svc.PasswordLogin(ctx, authcore.PasswordLoginRequest{Login: login, Password: "not the password", Client: authcore.Client{IP: addr}})
		d := time.Since(start)
		if authcore.KindOf(err) != authcore.KindUnauthorized {
			b.Fatalf("login %s: %v, want KindUnauthorized", login, err)
		}
		return d
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // alternate which goes first
			wrong, unknown = append(wrong, try("bench-user")), append(unknown, try("nobody-here"))
		} else {
			unknown, wrong = append(unknown, try("nobody-here")), append(wrong, try("bench-user"))
		}
	}
	mw, mu := median(wrong), median(unknown)
	b.ReportMetric(float64(mw.Nanoseconds()), "wrong-ns")
	b.ReportMetric(float64(mu.Nanoseconds()), "unknown-ns")
	b.ReportMetric(float64(mu)/float64(mw), "unknown/wrong")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// passwordService returns a service on a memory store, without limits,
// whose user "bench-user" has a password.
func passwordService(tb testing.TB) *authcore.Service {
	tb.Helper()
	ctx := context.Background()
	store := memstore.New(nil, nil)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: store, Signer: signer, Vault: vault, Limiter: noLimits{}, PublicURL: "https://hub.example"})
	if err != nil {
		tb.Fatal(err)
	}
	u, _, err := store.UpsertIdentity(ctx, authcore.Identity{Provider: "phone", Subject: "+8613800138000"}, authcore.Profile{},
		authcore.User{ID: "u-bench", Nickname: "bench", CreatedAt: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	p := authcore.Principal{User: u, Session: authcore.SessionRecord{FamilyID: "f-bench", UserID: u.ID, AuthTime: time.Now()}}
	if err := svc.SetUsername(ctx, p, "bench-user"); err != nil {
		tb.Fatal(err)
	}
	if err := svc.SetPassword(ctx, p, authcore.SetPasswordRequest{Password: "a long bench password"}); err != nil {
		tb.Fatal(err)
	}
	return svc
}
