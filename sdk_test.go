package main

// The mini-program SDK (clients/miniprogram) is plain JavaScript; its tests
// run in Node (node --test, no npm packages) against this hub's binary.
// This test checks the syntax of every script of the SDK and the example
// mini-program, builds the binary, runs the tests and reports node's output
// when they fail. Without node on PATH it skips, unless
// LOGINHUB_TEST_REQUIRE_ALL=1.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeTestsBudget bounds the whole Node run; the tests take about two
// seconds.
const nodeTestsBudget = 3 * time.Minute

func TestMiniProgramSDK(t *testing.T) {
	node := requireTool(t, "node not on PATH: the mini-program SDK's tests (clients/miniprogram/test) did not run; install Node.js 18 or later (apt-get install nodejs)", "node")
	files, err := filepath.Glob(filepath.Join("clients", "miniprogram", "test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Node tests in clients/miniprogram/test (%v)", err)
	}
	// Every script of the SDK and the example parses (node --check).
	for _, dir := range []string{filepath.Join("clients", "miniprogram"), exampleRoot} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".js" {
				return err
			}
			if out, err := exec.Command(node, "--check", p).CombinedOutput(); err != nil {
				t.Errorf("node --check %s: %v\n%s", p, err, out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := hubBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), nodeTestsBudget)
	defer cancel()
	// The files are named one by one: node --test takes a directory in
	// some versions and a glob in others.
	cmd := exec.CommandContext(ctx, node, append([]string{"--test"}, files...)...)
	cmd.Env = append(os.Environ(), "LOGINHUB_BIN="+bin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test still running after %v:\n%s", nodeTestsBudget, out)
	}
	if err != nil {
		t.Fatalf("node --test %v: %v\n%s", files, err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
