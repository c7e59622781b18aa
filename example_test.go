package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// exampleRoot is the example mini-program, as WeChat DevTools opens it.
const exampleRoot = "examples/miniprogram"

// TestMiniProgramExample checks what WeChat DevTools would refuse or break
// on when it opens the example: every JSON file parses; every page that
// app.json lists has its .js, .json and .wxml; the sitemap and the
// project's root exist; every require() resolves to a file inside the
// project (WeChat cannot load modules outside it); every file a page's WXML
// or JSON references exists, and every handler the WXML binds is defined
// in the page's JS; and the example's copy of the SDK is the SDK.
func TestMiniProgramExample(t *testing.T) {
	var jsFiles []string
	err := filepath.WalkDir(exampleRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(p) {
		case ".json":
			var v any
			if err := json.Unmarshal(mustRead(t, p), &v); err != nil {
				t.Errorf("%s: not valid JSON: %v", p, err)
			}
		case ".js":
			jsFiles = append(jsFiles, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var app struct {
		Pages           []string `json:"pages"`
		SitemapLocation string   `json:"sitemapLocation"`
	}
	decodeJSON(t, filepath.Join(exampleRoot, "app.json"), &app)
	if len(app.Pages) == 0 {
		t.Fatal("app.json lists no pages")
	}
	for _, f := range []string{"app.js", app.SitemapLocation} {
		mustExist(t, "app.json's app", filepath.Join(exampleRoot, f))
	}
	for _, want := range []string{"pages/login/login", "pages/scan/scan"} {
		if !slices.Contains(app.Pages, want) {
			t.Errorf("app.json's pages %q lack %s", app.Pages, want)
		}
	}

	var project struct {
		AppID           string `json:"appid"`
		CompileType     string `json:"compileType"`
		MiniprogramRoot string `json:"miniprogramRoot"`
		Setting         struct {
			URLCheck *bool `json:"urlCheck"`
		} `json:"setting"`
		Condition struct {
			Miniprogram struct {
				List []struct {
					PathName string `json:"pathName"`
				} `json:"list"`
			} `json:"miniprogram"`
		} `json:"condition"`
	}
	decodeJSON(t, filepath.Join(exampleRoot, "project.config.json"), &project)
	if project.AppID == "" || project.CompileType != "miniprogram" {
		t.Errorf("project.config.json: appid %q, compileType %q; want a placeholder appid and miniprogram", project.AppID, project.CompileType)
	}
	mustExist(t, "project.config.json's miniprogramRoot", filepath.Join(exampleRoot, project.MiniprogramRoot))
	if project.Setting.URLCheck == nil || *project.Setting.URLCheck {
		t.Error("project.config.json: setting.urlCheck must be false (不校验合法域名), so the example reaches a local hub")
	}
	for _, c := range project.Condition.Miniprogram.List {
		if !slices.Contains(app.Pages, c.PathName) {
			t.Errorf("project.config.json's compile condition opens %s, which app.json does not list", c.PathName)
		}
	}

	for _, page := range app.Pages {
		base := filepath.Join(exampleRoot, filepath.FromSlash(page))
		complete := true
		for _, ext := range []string{".js", ".json", ".wxml"} {
			if _, err := os.Stat(base + ext); err != nil {
				t.Errorf("page %s: %s%s is missing", page, base, ext)
				complete = false
			}
		}
		if complete {
			checkPage(t, page, base)
		}
	}

	requireRE := regexp.MustCompile(`\brequire\(\s*["']([^"']+)["']\s*\)`)
	comments := regexp.MustCompile(`(?s)/\*.*?\*/|(?m)^\s*//.*$`)
	for _, f := range jsFiles {
		code := comments.ReplaceAllString(string(mustRead(t, f)), "")
		for _, m := range requireRE.FindAllStringSubmatch(code, -1) {
			target := m[1]
			if !strings.HasPrefix(target, ".") && !strings.HasPrefix(target, "/") {
				t.Errorf("%s requires %q: WeChat loads only files of the project, by path", f, target)
				continue
			}
			resolved := resolveInProject(t, f, target)
			if !strings.HasSuffix(resolved, ".js") {
				resolved += ".js"
			}
			mustExist(t, f+" requires "+target, resolved)
		}
	}

	sdk := mustRead(t, "clients/miniprogram/loginhub.js")
	if copied := mustRead(t, filepath.Join(exampleRoot, "lib", "loginhub.js")); !bytes.Equal(copied, sdk) {
		t.Error("examples/miniprogram/lib/loginhub.js differs from clients/miniprogram/loginhub.js; copy it: " +
			"cp clients/miniprogram/loginhub.js examples/miniprogram/lib/loginhub.js")
	}
}

var (
	wxmlSrcRE     = regexp.MustCompile(`<(?:import|include|wxs|image)\b[^>]*\bsrc="([^"{]+)"`)
	wxmlHandlerRE = regexp.MustCompile(`\b(?:bind|catch|capture-bind|capture-catch|mut-bind):?[a-z]+="([A-Za-z_$][\w$]*)"`)
)

// checkPage checks the files a page's WXML and JSON reference, and that its
// JS defines every handler the WXML binds.
func checkPage(t *testing.T, page, base string) {
	t.Helper()
	wxml := string(mustRead(t, base+".wxml"))
	for _, m := range wxmlSrcRE.FindAllStringSubmatch(wxml, -1) {
		if strings.Contains(m[1], "://") {
			continue
		}
		mustExist(t, page+".wxml references "+m[1], resolveInProject(t, base+".wxml", m[1]))
	}
	js := string(mustRead(t, base+".js"))
	for _, m := range wxmlHandlerRE.FindAllStringSubmatch(wxml, -1) {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(m[1]) + `\s*(\(|:)`).MatchString(js) {
			t.Errorf("%s.wxml binds %s, which %s.js does not define", page, m[1], page)
		}
	}
	var cfg struct {
		UsingComponents map[string]string `json:"usingComponents"`
	}
	decodeJSON(t, base+".json", &cfg)
	for name, c := range cfg.UsingComponents {
		if strings.HasPrefix(c, "plugin://") {
			continue
		}
		p := resolveInProject(t, base+".json", c)
		for _, ext := range []string{".js", ".json", ".wxml"} {
			mustExist(t, page+" uses component "+name, p+ext)
		}
	}
}

// resolveInProject resolves ref as WeChat does (relative to from, or to the
// project root when it starts with "/") and fails when it leaves the
// project.
func resolveInProject(t *testing.T, from, ref string) string {
	t.Helper()
	var p string
	if strings.HasPrefix(ref, "/") {
		p = path.Join(exampleRoot, ref)
	} else {
		p = path.Join(path.Dir(filepath.ToSlash(from)), ref)
	}
	if p != exampleRoot && !strings.HasPrefix(p, exampleRoot+"/") {
		t.Errorf("%s references %s, outside the project (%s)", from, ref, exampleRoot)
	}
	return filepath.FromSlash(p)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustExist(t *testing.T, what, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Errorf("%s: %s is missing", what, p)
	}
}

func decodeJSON(t *testing.T, p string, v any) {
	t.Helper()
	if err := json.Unmarshal(mustRead(t, p), v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}
