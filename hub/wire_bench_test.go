package hub

import (
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

func BenchmarkEncodeState(b *testing.B) {
	v := authcore.View{
		ID: "AAAAAAAAAAAAAAAA", State: authcore.StateScanned, Version: 2, ExpiresAt: time.Now(),
		Trail:   []authcore.State{authcore.StatePending, authcore.StateScanned},
		Scanner: &authcore.Profile{Nickname: "alice", AvatarURL: "https://a.example/x.png"},
	}
	b.ReportAllocs()
	for b.Loop() {
		encodeState(v, 2)
	}
}
