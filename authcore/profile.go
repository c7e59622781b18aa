package authcore

import (
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Profile limits: a nickname is shown on the desktop that asks for a login
// (the scanner) and on the user's own pages; an avatar is loaded by them.
const (
	MaxNicknameRunes = 64
	maxAvatarURLLen  = 1024
)

// CleanNickname returns s without control characters and bidirectional
// formatting characters, trimmed, cut to MaxNicknameRunes runes. Bidi
// overrides would let a nickname reorder the text around it on a desktop
// ("confirm as …"), control characters break logs and terminals. Invalid
// UTF-8 becomes U+FFFD.
func CleanNickname(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			continue
		}
		if n == MaxNicknameRunes {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// isBidiControl reports whether r is one of Unicode's explicit
// bidirectional formatting characters (UAX #9: marks, embeddings,
// overrides, isolates).
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061C', r == '\u200E', r == '\u200F':
		return true
	case r >= '\u202A' && r <= '\u202E':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// ValidAvatarURL reports whether s may be stored as an avatar: an https
// URL with a host, or an http one whose host is loopback (the sandbox and
// tests serve avatars from this machine). Pages load avatars as images; an
// http one would be mixed content on an https page and reveal the viewer
// to anyone on the path, other schemes (javascript:, data:, file:) are
// not images to fetch. The empty string means "no avatar" and is valid.
func ValidAvatarURL(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > maxAvatarURLLen || !utf8.ValidString(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return loopbackHost(u.Hostname())
	}
	return false
}

// ProviderAvatarURL is an avatar URL as an identity provider gave it,
// made fit to store: an http URL on a host other than loopback becomes
// https (QQ, Weibo and WeChat still hand out some http avatar URLs, and
// their image hosts serve the same paths over https), and a URL that is
// then not ValidAvatarURL becomes "" (no avatar).
func ProviderAvatarURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		u.Scheme = "https"
		s = u.String()
	}
	if !ValidAvatarURL(s) {
		return ""
	}
	return s
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// cleanProfile is a profile as it may be stored: the nickname cleaned, an
// avatar that is not ValidAvatarURL dropped (an empty field keeps what is
// stored). For profiles from WeChat, which the user cannot correct.
func cleanProfile(p Profile) Profile {
	p.Nickname = CleanNickname(p.Nickname)
	if !ValidAvatarURL(p.AvatarURL) {
		p.AvatarURL = ""
	}
	return p
}
