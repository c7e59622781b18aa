package oauth1_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/oauth1"
)

func TestPercentEncode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abcXYZ019-._~", "abcXYZ019-._~"},
		{"r b", "r%20b"},
		{"=%3D", "%3D%253D"},
		{"a+b*c/d@e!", "a%2Bb%2Ac%2Fd%40e%21"},
		{"é☃", "%C3%A9%E2%98%83"},
		{"", ""},
	} {
		if got := oauth1.PercentEncode(c.in); got != c.want {
			t.Errorf("PercentEncode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBaseStringURI: the examples of RFC 5849 section 3.4.1.2.
func TestBaseStringURI(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"HTTP://EXAMPLE.COM:80/r%20v/X?id=123", "http://example.com/r%20v/X"},
		{"https://www.example.net:8080/?q=1", "https://www.example.net:8080/"},
		{"https://example.com:443", "https://example.com/"},
		{"http://[::1]:8080/a", "http://[::1]:8080/a"},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := oauth1.BaseStringURI(u); got != c.want {
			t.Errorf("BaseStringURI(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

// rfcRequest is the request of RFC 5849 section 3.4.1.1.
func rfcRequest(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b", strings.NewReader("c2&a3=2+q"))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", `OAuth realm="Example",
	oauth_consumer_key="9djdj82h48djs9d2",
	oauth_token="kkk9d7dh3k39sjv7",
	oauth_signature_method="HMAC-SHA1",
	oauth_timestamp="137131201",
	oauth_nonce="7d8f3e4a",
	oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"`)
	return r
}

// TestRFCBaseString: the parameters (3.4.1.3.2) and base string (3.4.1.1)
// of the RFC's example request, collected from its query, form body and
// Authorization header.
func TestRFCBaseString(t *testing.T) {
	r := rfcRequest(t)
	params, err := oauth1.RequestParameters(r)
	if err != nil {
		t.Fatal(err)
	}
	const wantParams = "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2" +
		"&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
	if got := oauth1.NormalizeParameters(params); got != wantParams {
		t.Errorf("normalized parameters\n%s\nwant\n%s", got, wantParams)
	}
	const want = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
	if got := oauth1.BaseString(r.Method, r.URL, params); got != want {
		t.Errorf("base string\n%s\nwant\n%s", got, want)
	}
	// The body is still there for whoever reads the request next.
	if err := r.ParseForm(); err != nil || r.PostForm.Get("a3") != "2 q" {
		t.Errorf("body after RequestParameters: %v, %v", r.PostForm, err)
	}
}

// The example flow of RFC 5849 section 1.2: printer.example.com
// (consumer dpf43f3p2l4k3l03 / kd94hf93k423kf44) and photos.example.net.
const (
	consumerKey    = "dpf43f3p2l4k3l03"
	consumerSecret = "kd94hf93k423kf44"
)

func TestRFCFlowSignatures(t *testing.T) {
	for _, c := range []struct {
		name, method, url  string
		token, tokenSecret string
		timestamp, nonce   string
		extra              url.Values
		want               string
	}{
		// The three signed requests of section 1.2, over HTTPS for the
		// first two as the RFC says, over HTTP for the last.
		{"temporary credentials", http.MethodPost, "https://photos.example.net/initiate",
			"", "", "137131200", "wIjqoS", url.Values{"oauth_callback": {"http://printer.example.com/ready"}}, "74KNZJeDHnMBp0EMJ9ZHt/XKycU="},
		{"token credentials", http.MethodPost, "https://photos.example.net/token",
			"hh5s93j4hdidpola", "hdhd0244k9j7ao03", "137131201", "walatlh", url.Values{"oauth_verifier": {"hfdp7dh39dks9884"}}, "gKgrFCywp7rO0OXSjdot/IHF7IU="},
		{"photos", http.MethodGet, "http://photos.example.net/photos?file=vacation.jpg&size=original",
			"nnch734d00sl2jdk", "pfkkdhi9sl3r4s00", "137131202", "chapoH", nil, "MdpQcU8iPSUjWoN/UDMsK2sui9I="},
	} {
		r, err := http.NewRequest(c.method, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts, _ := time.Parse("2006", "1970")
		s := &oauth1.Signer{
			ConsumerKey: consumerKey, ConsumerSecret: consumerSecret, Realm: "Photos",
			Now:   func() time.Time { return ts.Add(mustSeconds(t, c.timestamp)) },
			Nonce: func() string { return c.nonce },
		}
		if err := s.Sign(r, c.token, c.tokenSecret, c.extra); err != nil {
			t.Fatal(err)
		}
		_, got, err := oauth1.ParseAuthorizationHeader(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Get("oauth_signature") != c.want {
			t.Errorf("%s: signature %q, want the RFC's %q (header %s)", c.name, got.Get("oauth_signature"), c.want, r.Header.Get("Authorization"))
		}
		if err := oauth1.Verify(r, consumerSecret, c.tokenSecret); err != nil {
			t.Errorf("%s: Verify of the signed request: %v", c.name, err)
		}
	}
}

func mustSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s + "s")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAuthorizationHeader(t *testing.T) {
	oauth := url.Values{"oauth_signature": {"MdpQcU8iPSUjWoN/UDMsK2sui9I="}, "oauth_consumer_key": {consumerKey}, "oauth_callback": {"http://printer.example.com/ready"}}
	h := oauth1.AuthorizationHeader("Photos", oauth)
	const want = `OAuth realm="Photos", oauth_callback="http%3A%2F%2Fprinter.example.com%2Fready", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"`
	if h != want {
		t.Errorf("header\n%s\nwant\n%s", h, want)
	}
	realm, got, err := oauth1.ParseAuthorizationHeader(h)
	if err != nil || realm != "Photos" || got.Encode() != oauth.Encode() {
		t.Errorf("parsed back: %q, %v, %v", realm, got, err)
	}
	for _, bad := range []string{`Bearer abc`, `OAuth oauth_token=abc`, `OAuth oauth_token="%zz"`} {
		if _, _, err := oauth1.ParseAuthorizationHeader(bad); err == nil {
			t.Errorf("ParseAuthorizationHeader(%q) succeeded", bad)
		}
	}
}

func TestVerify(t *testing.T) {
	s := &oauth1.Signer{ConsumerKey: consumerKey, ConsumerSecret: consumerSecret}
	r, err := http.NewRequest(http.MethodPost, "https://api.example.com/statuses/update?x=1", strings.NewReader("status=hello+world"))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := s.Sign(r, "tok", "toksecret", nil); err != nil {
		t.Fatal(err)
	}
	if err := oauth1.Verify(r, consumerSecret, "toksecret"); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := oauth1.Verify(r, consumerSecret, "other"); !errors.Is(err, oauth1.ErrBadSignature) {
		t.Errorf("Verify with another token secret: %v, want ErrBadSignature", err)
	}
	r.URL.RawQuery = "x=2" // a tampered parameter
	if err := oauth1.Verify(r, consumerSecret, "toksecret"); !errors.Is(err, oauth1.ErrBadSignature) {
		t.Errorf("Verify of a tampered request: %v, want ErrBadSignature", err)
	}
}
