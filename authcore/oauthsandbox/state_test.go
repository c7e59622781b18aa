package oauthsandbox_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/statetest"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
)

func TestMemoryState(t *testing.T) {
	statetest.Run(t, func(*testing.T) oauthsandbox.State { return oauthsandbox.NewMemoryState() })
}

func TestRedisState(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		testRedisState(t, redistest.Start(t, redistest.Options{}).Client())
	})
	t.Run("cluster", func(t *testing.T) {
		testRedisState(t, redistest.StartCluster(t).Client(t))
	})
}

var prefixes atomic.Int64

func testRedisState(t *testing.T, c redis.UniversalClient) {
	var used []string
	statetest.Run(t, func(*testing.T) oauthsandbox.State {
		prefix := fmt.Sprintf("test%d:sbx:qq", prefixes.Add(1))
		used = append(used, prefix)
		return oauthsandbox.NewRedisState(c, prefix)
	})
	// Nothing but app secrets lives for ever: anyone may ask for codes.
	ctx := context.Background()
	for _, prefix := range used {
		keys, err := c.Keys(ctx, prefix+":*").Result()
		if cc, ok := c.(*redis.ClusterClient); ok {
			var mu sync.Mutex // ForEachMaster calls in parallel
			keys = nil
			err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				k, err := m.Keys(ctx, prefix+":*").Result()
				mu.Lock()
				defer mu.Unlock()
				keys = append(keys, k...)
				return err
			})
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Errorf("prefix %s: no keys written", prefix)
		}
		for _, k := range keys {
			ttl := c.PTTL(ctx, k).Val()
			if app := strings.HasPrefix(k, prefix+":app:"); app != (ttl < 0) {
				t.Errorf("key %q: TTL %v", k, ttl)
			}
		}
	}
}
