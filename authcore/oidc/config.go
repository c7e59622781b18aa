package oidc

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// maxNameLen keeps "oidc:<name>" within the 64 bytes of a provider name.
const maxNameLen = 64 - len("oidc:")

// ValidName reports whether name may name an upstream: 1 to 59 of a-z,
// 0-9, '_', '-' and '.'.
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// EnvPrefix is the prefix of the variables of upstream name:
// "LOGINHUB_OIDC_" and the name upper-cased, with '-' and '.' as '_'
// (shells take no other characters in a variable's name).
func EnvPrefix(name string) string {
	return "LOGINHUB_OIDC_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(name)) + "_"
}

// ParseUpstreams reads the upstream providers that the hub's environment
// configures: LOGINHUB_OIDC_UPSTREAMS=name,... and, for each name,
// LOGINHUB_OIDC_<NAME>_ISSUER (https, or http on a loopback host),
// _CLIENT_ID, _CLIENT_SECRET (all three required) and _SCOPES (optional,
// separated by spaces or commas; "openid" is always asked for). None
// configured: no Config and no error. Each error starts with the name of
// the variable at fault. The Configs have no HTTPClient, Logger or Lazy:
// those are the caller's.
func ParseUpstreams(getenv func(string) string) ([]Config, error) {
	const list = "LOGINHUB_OIDC_UPSTREAMS"
	raw := strings.TrimSpace(getenv(list))
	if raw == "" {
		return nil, nil
	}
	names := strings.Split(raw, ",")
	byPrefix := map[string]string{}
	for i, name := range names {
		name = strings.TrimSpace(name)
		if !ValidName(name) {
			return nil, fmt.Errorf("%s: %q is not a name: want 1 to %d of a-z, 0-9, '_', '-', '.'", list, name, maxNameLen)
		}
		prefix := EnvPrefix(name)
		if other, ok := byPrefix[prefix]; ok {
			if other == name {
				return nil, fmt.Errorf("%s: %q is listed twice", list, name)
			}
			return nil, fmt.Errorf("%s: %q and %q would share the variables %s*", list, other, name, prefix)
		}
		byPrefix[prefix], names[i] = name, name
	}
	var out []Config
	for _, name := range names {
		c, err := parseUpstream(getenv, name, EnvPrefix(name))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseUpstream(getenv func(string) string, name, prefix string) (Config, error) {
	c := Config{Name: name}
	for _, v := range []struct {
		suffix string
		into   *string
	}{{"ISSUER", &c.Issuer}, {"CLIENT_ID", &c.ClientID}, {"CLIENT_SECRET", &c.ClientSecret}} {
		*v.into = strings.TrimSpace(getenv(prefix + v.suffix))
		if *v.into == "" {
			return Config{}, fmt.Errorf("%s%s: required", prefix, v.suffix)
		}
	}
	if err := checkIssuer(c.Issuer); err != nil {
		return Config{}, fmt.Errorf("%sISSUER: %w", prefix, err)
	}
	if s := strings.FieldsFunc(getenv(prefix+"SCOPES"), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }); len(s) > 0 {
		c.Scopes = s
	}
	return c, nil
}

// checkIssuer accepts an https URL with a host and without query or
// fragment, or such an http URL on a loopback host (a provider run
// beside the hub in development).
func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: want a URL with a host, without query, fragment or user", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if u.Hostname() == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q: want https (http only on a loopback host)", s)
	}
	return fmt.Errorf("%q: want an https URL", s)
}
