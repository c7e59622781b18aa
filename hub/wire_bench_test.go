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
	buf := make([]byte, 0, 512) // as the frame writer does: a reused buffer
	b.ReportAllocs()
	for b.Loop() {
		buf = appendStateEvent(buf[:0], v, 2)
	}
}
