package authcore

import (
	"net/netip"
	"strings"
)

// coarseLocation describes where a desktop is, for the phone's confirmation
// screen. Without a GeoIP database it can only tell loopback and private
// networks from the Internet; that still warns a user whose "desktop" is
// on the public Internet while they sit at a company PC.
func coarseLocation(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.IsLoopback():
		return "this machine (loopback)"
	case ip.IsPrivate(), ip.IsLinkLocalUnicast():
		return "private network"
	default:
		return "Internet"
	}
}

// deviceFromUserAgent names the browser and OS in a User-Agent, enough for
// a person to recognise their own computer ("Chrome on Windows").
func deviceFromUserAgent(ua string) string {
	if ua == "" {
		return "unknown device"
	}
	browser := "a browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"MicroMessenger", "WeChat"}, {"Firefox/", "Firefox"},
		{"HeadlessChrome", "Headless Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	os := ""
	for _, o := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Mac OS X", "macOS"},
		{"Android", "Android"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	if os == "" {
		return browser
	}
	return browser + " on " + os
}
