package authcore_test

import (
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

func BenchmarkTicketSign(b *testing.B) {
	s, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	id, exp := authcore.NewTicketID(), time.Now().Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(id, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTicketVerify(b *testing.B) {
	s, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	now := time.Now()
	signed, _ := s.Sign(authcore.NewTicketID(), now.Add(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(signed, now); err != nil {
			b.Fatal(err)
		}
	}
}
