package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/loginhub/loginhub/oidcprovider"
)

// BenchmarkOIDCRefresh measures the token endpoint on one embedded node:
// refresh_token grants, each rotating its grant's refresh token and
// signing an id_token and an access token (ES256), on parallel chains.
// The client runs in the same process, so both share the cores.
func BenchmarkOIDCRefresh(b *testing.B) {
	h := startHub(b, map[string]string{"LOGINHUB_OIDC_CLIENTS": writeClients(b, rpRedirect)})
	rp := newRelyingParty(b, h.URL)
	br := browser()
	f := rp.start()
	code, _ := authorizeByScan(b, h, br, f, "bench-alice")
	tok, _, _ := rp.exchange(b, code, f)
	// One grant per chain: the browser's hub session completes each new
	// authorization at once.
	chains := make(chan string, 64)
	chains <- tok.RefreshToken
	for range cap(chains) - 1 {
		f := rp.start()
		_, cb := loginPage(b, br, f)
		tok, _, _ := rp.exchange(b, codeFrom(b, br, cb, f), f)
		chains <- tok.RefreshToken
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	b.ReportAllocs()
	b.SetParallelism(16) // 32 clients at once on 2 cores: throughput, not one client's latency
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		refresh := <-chains
		for pb.Next() {
			next, err := rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
			if err != nil {
				b.Error(err)
				return
			}
			refresh = next.RefreshToken
		}
	})
}

// BenchmarkOIDCJWKS measures GET /.well-known/jwks.json on one node.
func BenchmarkOIDCJWKS(b *testing.B) {
	h := startHub(b, map[string]string{"LOGINHUB_OIDC_CLIENTS": writeClients(b, rpRedirect)})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get(h.URL + oidcprovider.JWKSPath)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
