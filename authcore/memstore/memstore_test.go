package memstore_test

import (
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/authcore/sms"
	"github.com/loginhub/loginhub/authcore/storetest"
	"github.com/loginhub/loginhub/authcore/wechat"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, notify authcore.Notifier) authcore.Store {
		return memstore.New(notify, nil)
	})
}

func BenchmarkMemstore(b *testing.B) {
	storetest.Bench(b, memstore.New(func(authcore.TicketRecord) {}, nil))
}

var _ wechat.TokenCache = (*memstore.Store)(nil)

func TestTokenCacheConformance(t *testing.T) {
	storetest.RunTokenCache(t, func(t *testing.T) wechat.TokenCache { return memstore.New(nil, nil) })
}

var _ sms.Mailbox = (*memstore.Store)(nil)

func TestMailboxConformance(t *testing.T) {
	storetest.RunMailbox(t, func(t *testing.T) sms.Mailbox { return memstore.New(nil, nil) })
}
