package memstore_test

import (
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/authcore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, notify authcore.Notifier) authcore.Store {
		return memstore.New(notify, nil)
	})
}

func BenchmarkMemstore(b *testing.B) {
	storetest.Bench(b, memstore.New(func(string, uint64) {}, nil))
}
