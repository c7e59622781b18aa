package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// procfileEnv returns the environment the Procfile gives process name.
func procfileEnv(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("Procfile")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		cmd, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		env := map[string]string{}
		for _, f := range strings.Fields(cmd) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				break // the command after the assignments
			}
			env[k] = v
		}
		return env
	}
	t.Fatalf("the Procfile has no %s process", name)
	return nil
}

// TestPublishedKeysOnlyOnLoopback: the development keys the Procfile
// publishes start its local cluster (Redis, a loopback public URL) as they
// are, and stop any hub others can reach, whatever the key id.
func TestPublishedKeysOnlyOnLoopback(t *testing.T) {
	local := procfileEnv(t, "hub1")
	if local["LOGINHUB_TICKET_KEYS"] == "" || local["LOGINHUB_DATA_KEY"] == "" || local["LOGINHUB_REDIS_URL"] == "" {
		t.Fatalf("hub1's environment %v lacks Redis or keys", local)
	}
	if _, err := loadConfig(nil, func(k string) string { return local[k] }, io.Discard); err != nil {
		t.Fatalf("the Procfile's hub1 does not start: %v", err)
	}
	for _, setting := range []string{"LOGINHUB_TICKET_KEYS", "LOGINHUB_DATA_KEY"} {
		_, published, _ := strings.Cut(local[setting], ":")
		for name, value := range map[string]string{
			"as published":           local[setting],
			"under another key id":   "prod:" + published,
			"behind a new first key": "k2:" + randomKey() + ",old:" + published,
		} {
			env := map[string]string{}
			for k, v := range local {
				env[k] = v
			}
			// Only this setting holds a published key.
			env["LOGINHUB_TICKET_KEYS"], env["LOGINHUB_DATA_KEY"] = sharedKeys(), sharedDataKey()
			env[setting] = value
			env["LOGINHUB_PUBLIC_URL"] = "https://login.example.com"
			env["LOGINHUB_ALLOWED_ORIGINS"] = ""
			_, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
			if err == nil {
				t.Errorf("%s %s with a public URL beyond loopback: accepted", setting, name)
				continue
			}
			if msg := err.Error(); !strings.HasPrefix(msg, setting) || !strings.Contains(msg, "published") {
				t.Errorf("%s %s: %q, want an error starting with %s that says the key is published", setting, name, msg, setting)
			}
		}
	}
}
