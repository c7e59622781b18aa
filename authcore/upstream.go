package authcore

import (
	"errors"
	"fmt"
	"net/url"
)

// ScrubURLError drops the query and user info from the URL in a transport
// error (a *url.Error), so that it can be logged: net/http puts the whole
// URL in its errors, and upstream APIs carry secrets, codes and phone
// numbers in their queries (WeChat's code2Session, Aliyun's SMS). Other
// errors come back unchanged.
func ScrubURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	where := "request"
	if u, perr := url.Parse(ue.URL); perr == nil {
		where = URLWithoutQuery(u)
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// URLWithoutQuery is u with neither query nor user info, safe to log.
func URLWithoutQuery(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery = nil, "", false
	return c.String()
}

// ValidBaseURL reports whether raw can be an upstream API's base URL: an
// http or https URL with a host and neither user info, query nor fragment
// (paths are appended to it, queries built after them).
func ValidBaseURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == ""
}
