package hub_test

import (
	"testing"

	"github.com/loginhub/loginhub/hub"
	"github.com/loginhub/loginhub/hub/brokertest"
)

func TestMemoryBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
		b := hub.NewMemoryBroker()
		return b, b.Publish
	})
}

func TestMemoryBrokerZeroValue(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
		var b hub.MemoryBroker
		return &b, b.Publish
	})
}
