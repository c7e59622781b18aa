package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore/redisstore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest/statetest"
)

var _ wechattest.State = (*redisstore.Sandbox)(nil)

func TestSandbox(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		testSandbox(t, redistest.Start(t, redistest.Options{}).Client())
	})
	t.Run("cluster", func(t *testing.T) {
		testSandbox(t, redistest.StartCluster(t).Client(t))
	})
}

func testSandbox(t *testing.T, c redis.UniversalClient) {
	var prefixes []string
	statetest.Run(t, func(t *testing.T, maxUsers int) wechattest.State {
		prefix := newPrefix()
		prefixes = append(prefixes, prefix)
		return redisstore.New(c, redisstore.Options{Prefix: prefix}).Sandbox(maxUsers)
	})

	ctx := context.Background()
	sbx := redisstore.New(c, redisstore.Options{Prefix: newPrefix()}).Sandbox(10)
	first, err := sbx.AppSecret(ctx, "wxapp", "s1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := sbx.AppSecret(ctx, "wxapp", "s2")
	if err != nil {
		t.Fatal(err)
	}
	if first != "s1" || second != "s1" {
		t.Errorf("app secrets %q then %q; want the first one stored, s1, both times", first, second)
	}

	// Nothing the suite wrote lives for ever: anyone may invent names
	// and codes.
	for _, prefix := range prefixes {
		keys := scanKeys(t, c, prefix+":*")
		if len(keys) == 0 {
			t.Errorf("prefix %s: no keys written", prefix)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix+":{sbx}:") {
				t.Errorf("key %q outside the sandbox's slot", k)
			}
			if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 {
				t.Errorf("key %q has no TTL (%v)", k, ttl)
			}
		}
	}
}

// scanKeys returns the keys matching pattern, on every master of a Cluster.
func scanKeys(t *testing.T, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	collect := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, pattern, 100).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return it.Err()
	}
	var err error
	switch cc := c.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex // ForEachMaster calls in parallel
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return collect(ctx, c)
		})
	case *redis.Client:
		err = collect(ctx, cc)
	default:
		err = fmt.Errorf("client %T", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
