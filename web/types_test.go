package web

// The client's package for front-end builds: static/package.json,
// static/loginhub.d.ts and static/loginhub.mjs beside loginhub.js. The
// declarations are checked against the code by text (always), the three
// ways to load the code by Node (when node is on PATH), and the usage
// examples in testdata/typescript by tsc (when tsc is on PATH).

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("static", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names returns the first submatch of every match of re in s, sorted and
// without repeats.
func names(re *regexp.Regexp, s string) []string {
	set := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		set[m[1]] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// block returns the body of the declaration that begins with head in the
// d.ts: from head to the first line that is a lone "}".
func block(t *testing.T, dts, head string) string {
	t.Helper()
	i := strings.Index(dts, head)
	if i < 0 {
		t.Fatalf("loginhub.d.ts has no %q", head)
	}
	body, _, ok := strings.Cut(dts[i+len(head):], "\n}")
	if !ok {
		t.Fatalf("loginhub.d.ts: %q does not end", head)
	}
	return body
}

// members are the names a d.ts block declares: "name:", "name?:", "name(".
var members = regexp.MustCompile(`(?m)^  (?:readonly )?([A-Za-z_]\w*)\??[(:]`)

// objectKeys are the keys of a JS object literal written as {a: a, b: b}.
var objectKeys = regexp.MustCompile(`(\w+):`)

// TestTypesMatchClient: loginhub.d.ts declares exactly the options start()
// reads, the members of the login it returns, the fields of LoginHubError
// and the members of the object the file hands out; loginhub.mjs exports
// what the d.ts says; package.json points at files that exist. A text
// check, so that changing loginhub.js without its types fails here.
func TestTypesMatchClient(t *testing.T) {
	js := readStatic(t, ClientScript)
	mjs := readStatic(t, ClientModule)
	dts := readStatic(t, "loginhub.d.ts")

	// start's options: o.name, and the callbacks called by emit("name").
	startBody := js[strings.Index(js, "function start(options)"):]
	read := names(regexp.MustCompile(`\bo\.([A-Za-z_]\w*)`), startBody)
	read = append(read, names(regexp.MustCompile(`emit\("(\w+)"`), startBody)...)
	slices.Sort(read)
	read = slices.Compact(read)

	// The login start returns: its last "    return { ... };".
	returns := regexp.MustCompile(`(?m)^    return \{ ([^}]*) \};$`).FindAllStringSubmatch(startBody, -1)
	if len(returns) == 0 {
		t.Fatal("loginhub.js: start's return { ... } not found")
	}
	handle := names(objectKeys, returns[len(returns)-1][1])

	// LoginHubError's fields: this.name = ... in its constructor.
	class := js[strings.Index(js, "class LoginHubError"):]
	class = class[:strings.Index(class, "\n  }\n")]
	fields := names(regexp.MustCompile(`this\.(\w+) =`), class)

	// The object handed out: var LoginHub = {...}; LoginHub.x = ...
	exported := regexp.MustCompile(`var LoginHub = \{ ([^}]*) \};`).FindStringSubmatch(js)
	if exported == nil {
		t.Fatal("loginhub.js: var LoginHub = { ... } not found")
	}
	module := names(objectKeys, exported[1])
	module = append(module, names(regexp.MustCompile(`\bLoginHub\.(\w+) =`), js)...)
	slices.Sort(module)

	tests := []struct {
		what     string
		fromJS   []string
		dtsBlock string
	}{
		{"start's options", read, "export interface StartOptions {"},
		{"the login start returns", handle, "export interface Login {"},
		{"LoginHubError's fields", fields, "export declare class LoginHubError extends Error {"},
		{"the object loginhub.js hands out", module, "export interface LoginHubModule {"},
	}
	for _, tt := range tests {
		declared := names(members, block(t, dts, tt.dtsBlock))
		declared = slices.DeleteFunc(declared, func(n string) bool { return n == "constructor" })
		if len(tt.fromJS) == 0 {
			t.Errorf("%s: found nothing in loginhub.js; has its shape changed?", tt.what)
		}
		if !slices.Equal(tt.fromJS, declared) {
			t.Errorf("%s: loginhub.js has %v, loginhub.d.ts declares %v", tt.what, tt.fromJS, declared)
		}
	}

	// loginhub.mjs's exports are the d.ts's value exports.
	mjsExports := names(regexp.MustCompile(`export (?:const (\w+)|\{ \w+ as (\w+) \})`), strings.ReplaceAll(mjs, "export { LoginHubError as Error }", "export const Error"))
	if strings.Contains(mjs, "export default ") {
		mjsExports = append(mjsExports, "default")
	}
	dtsExports := names(regexp.MustCompile(`export declare (?:function|class) (\w+)`), dts)
	dtsExports = append(dtsExports, names(regexp.MustCompile(`export \{ \w+ as (\w+) \}`), dts)...)
	if strings.Contains(dts, "export default ") {
		dtsExports = append(dtsExports, "default")
	}
	slices.Sort(mjsExports)
	slices.Sort(dtsExports)
	if !slices.Equal(mjsExports, dtsExports) {
		t.Errorf("loginhub.mjs exports %v, loginhub.d.ts declares %v", mjsExports, dtsExports)
	}

	// package.json names files that exist, and these entry points.
	var pkg struct {
		Main, Module, Types string
		Exports             map[string]json.RawMessage
		Files               []string
	}
	if err := json.Unmarshal([]byte(readStatic(t, "package.json")), &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	var dot map[string]string
	if err := json.Unmarshal(pkg.Exports["."], &dot); err != nil {
		t.Fatalf("package.json exports[\".\"]: %v", err)
	}
	want := map[string]string{"types": "./loginhub.d.ts", "import": "./" + ClientModule, "require": "./" + ClientScript, "default": "./" + ClientScript}
	if !maps.Equal(dot, want) {
		t.Errorf("package.json exports[\".\"] = %v, want %v", dot, want)
	}
	if pkg.Main != "./"+ClientScript || pkg.Module != "./"+ClientModule || pkg.Types != "./loginhub.d.ts" {
		t.Errorf("package.json main, module, types = %q, %q, %q", pkg.Main, pkg.Module, pkg.Types)
	}
	for _, f := range append(pkg.Files, slices.Collect(maps.Values(dot))...) {
		if _, err := os.Stat(filepath.Join("static", f)); err != nil {
			t.Errorf("package.json names %s: %v", f, err)
		}
	}
}

// TestClientLoadsEveryWay loads loginhub.js in Node as CommonJS
// (require), through loginhub.mjs (import), and as a plain script with a
// window (what <script src> does), and compares what each hands out.
func TestClientLoadsEveryWay(t *testing.T) {
	node := nodePath(t)
	const script = `
const path = require("path"), fs = require("fs"), vm = require("vm");
const dir = path.resolve(process.argv[1]);
const shape = (m) => ({
  keys: Object.keys(m).sort(),
  start: typeof m.start,
  sameError: m.Error === m.LoginHubError && typeof m.Error === "function",
  selfDefault: m.default === m || (m.default && m.default.start === m.start),
});
(async () => {
  const cjs = require(path.join(dir, "loginhub.js"));
  const esm = await import(path.join(dir, "loginhub.mjs"));
  const win = { crypto: globalThis.crypto };
  vm.runInNewContext(fs.readFileSync(path.join(dir, "loginhub.js"), "utf8"), { window: win });
  const e = new cjs.Error("network", "offline", 0);
  process.stdout.write(JSON.stringify({
    require: shape(cjs),
    import: shape(esm),
    script: shape(win.LoginHub),
    importIsRequire: esm.default === cjs && esm.start === cjs.start,
    error: [e.name, e.error, e.message, e.status, e.fatal, e.retryAfterMs, e instanceof Error],
  }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`
	out, err := exec.Command(node, "-e", script, "static").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	type shape struct {
		Keys        []string
		Start       string
		SameError   bool
		SelfDefault bool
	}
	var got struct {
		Require, Import, Script shape
		ImportIsRequire         bool
		Error                   []any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node said %s: %v", out, err)
	}
	// The object's keys, and the ES module's exports.
	want := shape{Keys: []string{"Error", "LoginHubError", "default", "start"}, Start: "function", SameError: true, SelfDefault: true}
	for _, c := range []struct {
		how       string
		got, want shape
	}{{"require", got.Require, want}, {"import", got.Import, want}, {"script", got.Script, want}} {
		if !slices.Equal(c.got.Keys, c.want.Keys) || c.got.Start != c.want.Start || c.got.SameError != c.want.SameError || c.got.SelfDefault != c.want.SelfDefault {
			t.Errorf("loaded by %s: got %+v, want %+v", c.how, c.got, c.want)
		}
	}
	if !got.ImportIsRequire {
		t.Errorf("import and require hand out different objects")
	}
	wantErr := []any{"LoginHubError", "network", "offline", 0.0, false, 0.0, true}
	if !slices.Equal(got.Error, wantErr) {
		t.Errorf("new LoginHub.Error(\"network\", \"offline\", 0): got %v, want %v", got.Error, wantErr)
	}
}

// TestTypesCompile type-checks the usage examples in testdata/typescript
// with tsc --noEmit, importing the package by its name from a
// node_modules that links to static/: usage.mts (ESM) and usage.cts
// (require) under node16 resolution, which reads package.json's exports,
// and script.ts (the global beside <script src>) under classic node
// resolution. The examples also carry @ts-expect-error lines, so types
// loosened to any fail too.
//
// It needs tsc (Debian: apt-get install node-typescript, which .ci/run
// does). Without tsc it skips with a message, or fails under
// LOGINHUB_TEST_REQUIRE_ALL=1, as CI installs it.
func TestTypesCompile(t *testing.T) {
	tsc, err := exec.LookPath("tsc")
	if err != nil {
		const msg = "tsc not on PATH (apt-get install node-typescript, or npm i -g typescript): skipping the TypeScript check of loginhub.d.ts"
		if os.Getenv("LOGINHUB_TEST_REQUIRE_ALL") == "1" {
			t.Fatal(msg + " — but LOGINHUB_TEST_REQUIRE_ALL=1 requires it")
		}
		t.Skip(msg)
	}
	static, err := filepath.Abs("static")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node_modules", "@loginhub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(static, filepath.Join(dir, "node_modules", "@loginhub", "desktop")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "typescript"))); err != nil {
		t.Fatal(err)
	}
	for _, config := range []string{"tsconfig.json", "tsconfig.script.json"} {
		cmd := exec.Command(tsc, "--noEmit", "-p", config)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("tsc --noEmit -p %s: %v\n%s", config, err, out)
		}
	}
}
