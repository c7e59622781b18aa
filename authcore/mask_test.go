package authcore

import (
	"strings"
	"testing"
)

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"13812345678":      "138****5678",
		"":                 "",
		"1":                "*",
		"123":              "***",
		"1234":             "1**4",
		"1234567":          "1*****7",
		"12345678":         "12****78",
		"1234567890":       "12******90",
		"123456789012":     "12********12",
		"+8613812345678":   "+8**********78",
		"+1 555 000 1234":  "+1***********34",
		"1381234567a":      "13*******7a",
		"１３８１２３４５６７８":      "１３*******７８",
		"\xff\xfe12345678": "**********",
	} {
		got := MaskPhone(in)
		if got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
		// Never more than half shown, except the mainland 3+4 format.
		shown := 0
		for _, r := range got {
			if r != '*' {
				shown++
			}
		}
		if n := len([]rune(in)); shown*2 > n && !(n == 11 && strings.Count(got, "*") == 4) {
			t.Errorf("MaskPhone(%q) = %q shows more than half", in, got)
		}
	}
}
