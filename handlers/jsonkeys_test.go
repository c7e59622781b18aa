package handlers

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

// TestDecodeStrictKeys: a key given twice, or one that matches a field
// only when case is ignored, is refused (encoding/json would take the last
// one, or the field); unknown keys stay allowed.
func TestDecodeStrictKeys(t *testing.T) {
	type inner struct {
		Name string `json:"name"`
	}
	type request struct {
		Code  string            `json:"code"`
		Inner inner             `json:"inner"`
		List  []inner           `json:"list"`
		Map   map[string]string `json:"map"`
	}
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"code":"a"}`, true},
		{`{"code":"a","unknown":{"x":1,"X":2}}`, true},
		{`{"code":"a","inner":{"name":"n"},"list":[{"name":"m"}],"map":{"k":"v","K":"w"}}`, true},
		{`{"code":"a","code":"b"}`, false},
		{`{"Code":"a"}`, false},
		{`{"CODE":"a"}`, false},
		{`{"code":"a","inner":{"name":"n","name":"m"}}`, false},
		{`{"code":"a","inner":{"Name":"n"}}`, false},
		{`{"code":"a","list":[{"name":"n"},{"NAME":"m"}]}`, false},
		{`{"code":"a","map":{"k":"v","k":"w"}}`, false},
		{`{"code":"a","unknown":{"x":1,"x":2}}`, false},
	}
	for _, tc := range cases {
		var req request
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		err := decode(httptest.NewRecorder(), r, &req, false)
		switch {
		case tc.ok && err != nil:
			t.Errorf("decode(%s) = %v, want it accepted", tc.body, err)
		case !tc.ok && authcore.KindOf(err) != authcore.KindInvalid:
			t.Errorf("decode(%s) = %v, want invalid_request", tc.body, err)
		}
	}
}
