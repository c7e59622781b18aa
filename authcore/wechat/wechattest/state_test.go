package wechattest_test

import (
	"testing"

	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest/statetest"
)

func TestMemoryState(t *testing.T) {
	statetest.Run(t, func(t *testing.T, maxUsers int) wechattest.State {
		return wechattest.NewMemoryState(maxUsers)
	})
}
