package main

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocsLinks checks every relative link in the repository's Markdown
// files: the target must exist inside the repository, and a #anchor must
// name a heading of the target file (as GitHub makes heading anchors).
// Links to http(s): and mailto: are not followed.
func TestDocsLinks(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" { // a directory, or a file in a git worktree
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range markdownLinks(string(text)) {
			if problem := checkLink(file, link); problem != "" {
				t.Errorf("%s: link %q: %s", file, link, problem)
			}
		}
	}
}

// checkLink returns what is wrong with a link found in file, or "".
func checkLink(file, link string) string {
	if strings.HasPrefix(link, "http:") || strings.HasPrefix(link, "https:") || strings.HasPrefix(link, "mailto:") {
		return ""
	}
	path, anchor, _ := strings.Cut(link, "#")
	path, err := url.PathUnescape(path)
	if err != nil {
		return "malformed path"
	}
	target := file
	if path != "" {
		if filepath.IsAbs(path) || strings.Contains(path, ":") {
			return "not a relative link"
		}
		target = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if !filepath.IsLocal(target) {
			return "leaves the repository"
		}
		if _, err := os.Stat(target); err != nil {
			return "no such file in the repository"
		}
	}
	if anchor == "" {
		return ""
	}
	if !strings.HasSuffix(target, ".md") {
		return "an anchor into a file that is not Markdown"
	}
	text, err := os.ReadFile(target)
	if err != nil {
		return err.Error()
	}
	for _, a := range headingAnchors(string(text)) {
		if a == anchor {
			return ""
		}
	}
	return "no heading with anchor #" + anchor + " in " + filepath.ToSlash(target)
}

var (
	linkRE       = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpanRE   = regexp.MustCompile("`[^`]*`")
	headingRE    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	linkInTextRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// markdownLines returns the lines of a Markdown text outside fenced code
// blocks: links and headings live there.
func markdownLines(text string) []string {
	var lines []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines = append(lines, line)
		}
	}
	return lines
}

// markdownLinks returns the targets of the [text](target) links of text,
// outside code blocks and code spans.
func markdownLinks(text string) []string {
	var links []string
	for _, line := range markdownLines(text) {
		line = codeSpanRE.ReplaceAllString(line, "``")
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			links = append(links, m[1])
		}
	}
	return links
}

// headingAnchors returns the anchors GitHub gives the headings of text:
// the heading's text in lower case, spaces turned into '-', punctuation
// other than '-' and '_' dropped; a repeated anchor gets "-1", "-2"...
func headingAnchors(text string) []string {
	var anchors []string
	seen := map[string]int{}
	for _, line := range markdownLines(text) {
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		heading := linkInTextRE.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			seen[anchor]++
			anchor += "-" + strconv.Itoa(n)
		} else {
			seen[anchor] = 1
		}
		anchors = append(anchors, anchor)
	}
	return anchors
}

// TestSettingsDocumented: every setting the hub reads is in the README's
// configuration table and in docs/API.md, so the docs cannot drift from
// config.go when a variable is added.
func TestSettingsDocumented(t *testing.T) {
	for _, doc := range []string{"README.md", "docs/API.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range settings {
			if !strings.Contains(string(text), "`"+s.env+"`") {
				t.Errorf("%s does not document %s", doc, s.env)
			}
		}
	}
}
