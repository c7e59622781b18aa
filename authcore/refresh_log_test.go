package authcore_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

// TestRefreshReuseLogged: the warning about a reused refresh token names
// the family it revoked and the user, so that an operator can follow up.
func TestRefreshReuseLogged(t *testing.T) {
	var logs bytes.Buffer
	signer, err := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	if err != nil {
		t.Fatal(err)
	}
	vault, err := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	if err != nil {
		t.Fatal(err)
	}
	wx := &fakeWeChat{codes: map[string]string{"c1": "o-alice"}}
	svc, err := authcore.NewService(authcore.Config{
		Store: memstore.New(nil, nil), Signer: signer, Vault: vault, WeChat: wx,
		PublicURL: "https://login.example.com", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := svc.WxLogin(ctx, authcore.WxLoginRequest{Code: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Refresh(ctx, sess.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Refresh(ctx, sess.RefreshToken)
	wantKind(t, "reused refresh token", err, authcore.KindUnauthorized)

	// lhr_<user>.<family>.<secret>
	parts := strings.Split(strings.TrimPrefix(sess.RefreshToken, "lhr_"), ".")
	line := logs.String()
	for _, want := range []string{"refresh token reused", "family=" + parts[1], "user=" + sess.User.ID} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, parts[2]) {
		t.Errorf("log %q holds the token's secret part", line)
	}
}
