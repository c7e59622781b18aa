package authcore

import (
	"strings"
	"unicode/utf8"
)

// MaskPhone masks a phone number for display: an 11-digit mainland number
// keeps its first 3 and last 4 digits ("138****5678"); anything else keeps
// at most its first 2 and last 2 characters and never more than a quarter
// of them at each end, so at most half is shown ("+1*********67"). The
// length is kept. Invalid UTF-8 is masked byte by byte.
func MaskPhone(p string) string {
	if len(p) == 11 && isDigits(p) {
		return p[:3] + "****" + p[7:]
	}
	if !utf8.ValidString(p) {
		return strings.Repeat("*", len(p))
	}
	r := []rune(p)
	keep := min(2, len(r)/4)
	for i := keep; i < len(r)-keep; i++ {
		r[i] = '*'
	}
	return string(r)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
