package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loginhub/loginhub/authcore/sms"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
	"github.com/loginhub/loginhub/handlers"
	"github.com/loginhub/loginhub/oidcprovider"
)

// openAPIFile is the hub's OpenAPI document, as handlers embeds it.
const openAPIFile = "handlers/openapi.json"

// notDocumented are the routes the document leaves out on purpose, by the
// pattern the router lists them under, with the reason.
var notDocumented = map[string]string{
	"/":             "a page (the desktop demo), not an API: docs/API.md, Pages",
	"/loginhub.js":  "the browser client's script, not an API: docs/API.md, Pages",
	"/loginhub.mjs": "the browser client's ES module entry, not an API: docs/API.md, Pages",
	"/s/{ticket}":   "the page a QR URL opens outside WeChat, not an API: docs/API.md, Pages",
	// The OpenID Connect provider: the protocol's own endpoints, which
	// its discovery document describes for every OIDC client (OpenID
	// Connect Discovery 1.0), and the hub's login page with its call.
	"/.well-known/openid-configuration": "OpenID Connect discovery: the protocol's, described by OpenID Connect Discovery 1.0",
	"/.well-known/jwks.json":            "the provider's JWKS (RFC 7517), named by the discovery document",
	"/oauth2/*":                         "the OpenID Connect endpoints (authorize, token, userinfo, introspect, revoke, logout), named by the discovery document",
	"/oauth2/authorize/login":           "the hub's login page of an authorization request: a page, not an API",
	"/oauth2/authorize/complete":        "the hub's own login page's call, not for integrators: docs/API.md, OpenID Connect provider",
}

// emulatedUpstream says whether a path is under one of the sandbox's
// fakes of an upstream API (WeChat's api.weixin.qq.com, QQ Connect,
// Weibo, WeChat website login, the carriers), which the router mounts
// whole. Their contract is the vendors', documented in docs/API.md's
// sandbox section and held by each fake's own tests (wechattest,
// qqtest...): the document describes the hub's API, and only the
// sandbox's own routes (/sandbox/phone, /sandbox/sms) are in it.
func emulatedUpstream(path string) bool {
	for _, mount := range []string{"/sandbox/wechat/", "/sandbox/qq/", "/sandbox/weibo/", "/sandbox/wechat_web/", "/sandbox/carrier/"} {
		if strings.HasPrefix(path, mount) {
			return true
		}
	}
	return false
}

// oidcProtocol says whether a path is the OpenID Connect provider's (the
// /oauth2 and /.well-known entries of notDocumented): the protocol's
// answers are the OIDC specifications', which its own tests hold.
func oidcProtocol(path string) bool {
	return strings.HasPrefix(path, "/oauth2/") || strings.HasPrefix(path, "/.well-known/")
}

// page says whether a path is one of the pages of notDocumented.
func page(path string) bool {
	return path == "/" || path == "/loginhub.js" || path == "/loginhub.mjs" || strings.HasPrefix(path, "/s/")
}

// openAPI is the document, parsed and checked once for the whole run.
var openAPI = sync.OnceValues(func() (*openAPIChecker, error) {
	data, err := os.ReadFile(openAPIFile)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", openAPIFile, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", openAPIFile, err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", openAPIFile, err)
	}
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil {
		return nil, fmt.Errorf("%s has no components.schemas.Error", openAPIFile)
	}
	return &openAPIChecker{doc: doc, router: router, errSchema: errSchema.Value}, nil
})

type openAPIChecker struct {
	doc       *openapi3.T
	router    routers.Router
	errSchema *openapi3.Schema
}

func init() {
	// Pages, images and the like are checked by content type only: their
	// bodies are taken as opaque strings.
	opaque := func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	}
	for _, ct := range []string{"text/html", "image/png", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, opaque)
	}
}

// hubURLs are the base URLs of the hubs the tests started (startHub,
// startNode): answers from them are held to the document; answers from
// anything else (a hub's internal listener, an upstream's fake) are not.
var hubURLs sync.Map

// servedByHub registers a hub's base URL until the test ends: its port
// may then serve something else (an upstream's fake).
func servedByHub(t testing.TB, base string) {
	hubURLs.Store(base, true)
	t.Cleanup(func() { hubURLs.Delete(base) })
}

// openAPIFailures collects every answer that did not match the document,
// also those of calls whose error a goroutine dropped: TestMain fails the
// run on any.
var openAPIFailures struct {
	sync.Mutex
	list []string
}

// noOpenAPICheck is a pseudo-header for tryCall: a call that sets it
// (with the reason as its value) is not held to the document. Only for
// requests that a test mangles on purpose beyond what a client could send.
const noOpenAPICheck = "X-Test-No-OpenAPI-Check"

// checkOpenAPI holds one answer of a hub to the document: the route must be
// documented with the answer's status, and the body must match its
// schema (non-JSON answers: their content type). An undocumented path must
// answer 404, and a documented path with another method 405, both with
// the Error schema.
func checkOpenAPI(req *http.Request, status int, header http.Header, body []byte) error {
	if _, ok := hubURLs.Load(req.URL.Scheme + "://" + req.URL.Host); !ok || emulatedUpstream(req.URL.Path) || page(req.URL.Path) ||
		oidcProtocol(req.URL.Path) {
		return nil
	}
	if req.Method == http.MethodOptions && status == http.StatusNoContent && header.Get("Access-Control-Allow-Methods") != "" {
		return nil // a CORS preflight, answered for every path (docs/API.md, Conventions)
	}
	err := openAPICheck(req, status, header, body)
	if err != nil {
		err = fmt.Errorf("OpenAPI (%s): %s %s answered %d: %w\nbody: %.600s", openAPIFile, req.Method, req.URL.Path, status, err, body)
		openAPIFailures.Lock()
		openAPIFailures.list = append(openAPIFailures.list, err.Error())
		openAPIFailures.Unlock()
	}
	return err
}

func openAPICheck(req *http.Request, status int, header http.Header, body []byte) error {
	oa, err := openAPI()
	if err != nil {
		return err
	}
	route, params, err := oa.router.FindRoute(req)
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		// The router stops at the first path that matches, without the
		// method: DELETE /v1/me/identities/wechat is the operation of
		// /v1/me/identities/{provider}, not a wrong method of
		// /v1/me/identities/wechat (POST), as in chi.
		if r, p := oa.templated(req); r != nil {
			route, params, err = r, p, nil
		}
	}
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return oa.checkError(status, http.StatusNotFound, header, body, "a path the document lacks")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return oa.checkError(status, http.StatusMethodNotAllowed, header, body, "a method the document lacks for this path")
	case err != nil:
		return err
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	opts.WithCustomSchemaErrorFunc(schemaErrorText)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                opts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		var re *openapi3filter.ResponseError
		if errors.As(err, &re) {
			if re.Err != nil {
				return fmt.Errorf("route %s %s: %s: %w", req.Method, route.Path, re.Reason, re.Err)
			}
			return fmt.Errorf("route %s %s: %s", req.Method, route.Path, re.Reason)
		}
		return fmt.Errorf("route %s %s: %w", req.Method, route.Path, err)
	}
	return nil
}

// templated finds the operation of req's method on a templated path that
// matches req's path, if any.
func (oa *openAPIChecker) templated(req *http.Request) (*routers.Route, map[string]string) {
	segs := strings.Split(req.URL.Path, "/")
	for path, item := range oa.doc.Paths.Map() {
		op := item.GetOperation(req.Method)
		tmpl := strings.Split(path, "/")
		if op == nil || len(tmpl) != len(segs) {
			continue
		}
		params := map[string]string{}
		for i, t := range tmpl {
			if name, ok := strings.CutPrefix(t, "{"); ok && segs[i] != "" {
				params[strings.TrimSuffix(name, "}")] = segs[i]
			} else if t != segs[i] {
				params = nil
				break
			}
		}
		if params != nil {
			return &routers.Route{Spec: oa.doc, Path: path, PathItem: item, Method: req.Method, Operation: op}, params
		}
	}
	return nil, nil
}

// schemaErrorText is a schema error as the field (a JSON pointer into the
// body) and what is wrong with it, from the innermost error that says so,
// without the schema and value dumps.
func schemaErrorText(err *openapi3.SchemaError) string {
	for {
		var inner *openapi3.SchemaError
		if err.Origin == nil || !errors.As(err.Origin, &inner) {
			break
		}
		err = inner
	}
	reason := cmp.Or(err.Reason, "does not match "+err.SchemaField)
	if strings.HasPrefix(reason, "at '") {
		return "field " + strings.TrimPrefix(reason, "at ") // the JSON Schema 2020-12 validator's, which names the field
	}
	return "field '/" + strings.Join(err.JSONPointer(), "/") + "': " + reason
}

// checkError checks an answer the document describes only by its shape:
// want's status and the Error schema.
func (oa *openAPIChecker) checkError(status, want int, header http.Header, body []byte, what string) error {
	if status != want {
		return fmt.Errorf("%s: status %d, want %d (or document the route)", what, status, want)
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%s: Content-Type %q, want application/json", what, header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s: body is not JSON: %w", what, err)
	}
	if err := oa.errSchema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors(), openapi3.SetSchemaErrorMessageCustomizer(schemaErrorText)); err != nil {
		return fmt.Errorf("%s: body does not match #/components/schemas/Error: %w", what, err)
	}
	return nil
}

// TestMain fails the run when any answer did not match the document, even
// one whose error a goroutine's caller dropped.
func TestMain(m *testing.M) {
	code := m.Run()
	openAPIFailures.Lock()
	defer openAPIFailures.Unlock()
	if len(openAPIFailures.list) > 0 {
		fmt.Fprintf(os.Stderr, "%d answers did not match the OpenAPI document:\n%s\n", len(openAPIFailures.list), strings.Join(openAPIFailures.list, "\n---\n"))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// fullRouter is the hub's router as run builds it in sandbox mode, with
// every optional route mounted: the emulated WeChat, QQ, Weibo, WeChat
// website login and carriers, and the SMS inbox.
func fullRouter(t *testing.T) http.Handler {
	t.Helper()
	env := map[string]string{"LOGINHUB_ADDR": "127.0.0.1:0", "LOGINHUB_SANDBOX": "on"}
	cfg, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	third, err := newThirdParty(ctx, thirdPartyEnv{cfg: cfg, sandboxBase: "http://127.0.0.1:1", http: http.DefaultClient, log: log})
	if err != nil {
		t.Fatal(err)
	}
	_, carrierFake, err := newCarriers(ctx, carrierEnv{cfg: cfg, sandboxBase: "http://127.0.0.1:1", http: http.DefaultClient, log: log, reg: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if len(third.fakes) == 0 || carrierFake == nil {
		t.Fatalf("sandbox mode built %d OAuth fakes and carrier fake %v: the walk would miss their routes", len(third.fakes), carrierFake)
	}
	return handlers.Routes(handlers.Deps{
		Logger: log, WebSocket: http.NotFoundHandler(), AllowedOrigin: func(string) bool { return false },
		Sandbox: &wechattest.Server{}, OAuthFakes: third.fakes, CarrierFake: carrierFake, SMSInbox: noInbox{},
		QR: handlers.NewQRCache(1), OIDC: noOIDC{},
	})
}

// noOIDC stands for the OpenID Connect provider, so that its routes are
// mounted for the walk.
type noOIDC struct{ http.Handler }

func (noOIDC) Login(context.Context, string, string) (oidcprovider.Step, error) {
	return oidcprovider.Step{}, nil
}
func (noOIDC) Complete(context.Context, string, string) (string, error) { return "", nil }
func (noOIDC) SessionCookie(string, int) *http.Cookie                   { return nil }

type noInbox struct{}

func (noInbox) Messages(context.Context, string, time.Time) ([]sms.Message, error) { return nil, nil }

// TestOpenAPIRoutes: every route of the router is in the document with its
// method, and every documented operation is a route of the router.
func TestOpenAPIRoutes(t *testing.T) {
	oa, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string][]string{} // pattern → methods
	err = chi.Walk(fullRouter(t).(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed[route] = append(routed[route], method)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	for path, item := range oa.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[path] = append(documented[path], strings.ToUpper(method))
		}
	}
	var problems []string
	for route, methods := range routed {
		slices.Sort(methods)
		if _, ok := notDocumented[route]; ok {
			continue
		}
		if strings.HasSuffix(route, "/*") && emulatedUpstream(strings.TrimSuffix(route, "*")) {
			continue
		}
		if len(methods) >= 9 {
			// Handle: one handler for every method (the WebSocket, which
			// answers 405 itself to anything but GET).
			if len(documented[route]) == 0 {
				problems = append(problems, fmt.Sprintf("route %s (any method) is not in the document", route))
			}
			continue
		}
		for _, m := range methods {
			if !slices.Contains(documented[route], m) {
				problems = append(problems, fmt.Sprintf("route %s %s is not in the document", m, route))
			}
		}
	}
	for path, methods := range documented {
		for _, m := range methods {
			if all := routed[path]; len(all) < 9 && !slices.Contains(all, m) {
				problems = append(problems, fmt.Sprintf("documented %s %s is not a route of the router", m, path))
			}
		}
	}
	slices.Sort(problems)
	for _, p := range problems {
		t.Error(p)
	}
	for route, why := range notDocumented {
		if routed[route] == nil {
			t.Errorf("notDocumented lists %s (%s), which the router lacks: drop it", route, why)
		}
	}
}

// TestOpenAPIServed: GET /v1/openapi.json serves the document as embedded,
// cacheable, with a working ETag.
func TestOpenAPIServed(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	want, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, c, "GET", h.URL+"/v1/openapi.json", "", nil)
	mustStatus(t, "GET /v1/openapi.json", r, 200)
	if !bytes.Equal(r.Body, want) {
		t.Errorf("GET /v1/openapi.json serves %d bytes that are not %s", len(r.Body), openAPIFile)
	}
	if got := r.Header.Get("Cache-Control"); got != "public, max-age=3600" {
		t.Errorf("Cache-Control: %q", got)
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	mustStatus(t, "GET /v1/openapi.json with If-None-Match", call(t, c, "GET", h.URL+"/v1/openapi.json", "", nil, "If-None-Match", etag), 304)
	// As the other /v1 routes: CORS for an allowed origin.
	r = call(t, c, "GET", h.URL+"/v1/openapi.json", "", nil, "Origin", h.URL)
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != h.URL {
		t.Errorf("Access-Control-Allow-Origin: %q, want %q", got, h.URL)
	}
}
