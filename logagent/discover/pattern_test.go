package discover

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPatternExpand(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"a/x.log", "a/b/y.log", "a/b/c/z.log", "a/b/c/z.txt", "d/w.log"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	rel := func(list []string) string {
		var out []string
		for _, p := range list {
			r, _ := filepath.Rel(root, p)
			out = append(out, r)
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	cases := []struct{ pat, matches, dirs string }{
		{"a/**/*.log", "a/b/c/z.log a/b/y.log a/x.log", "a a/b a/b/c"},
		{"**/*.log", "a/b/c/z.log a/b/y.log a/x.log d/w.log", ". a a/b a/b/c d"},
		{"a/**", "a/b/c/z.log a/b/c/z.txt a/b/y.log a/x.log", "a a/b a/b/c"},
		{"*/x.log", "a/x.log", ". a d"},
		{"a/x.log", "a/x.log", "a"},
		{"later/sub/x.log", "", "."}, // nearest existing ancestor
		{"a/later/*.log", "", "a"},
	}
	for _, c := range cases {
		p, err := Compile(filepath.Join(root, c.pat))
		if err != nil {
			t.Fatal(err)
		}
		m, d := p.Expand()
		if got := rel(m); got != c.matches {
			t.Errorf("%s: matches %q, want %q", c.pat, got, c.matches)
		}
		if got := rel(d); got != c.dirs {
			t.Errorf("%s: dirs %q, want %q", c.pat, got, c.dirs)
		}
		for _, f := range m {
			if !p.Match(f) {
				t.Errorf("%s: Match(%s) false for a match", c.pat, f)
			}
		}
	}
}

func TestPatternRelevant(t *testing.T) {
	p, _ := Compile("/var/log/**/app/*.log")
	for path, want := range map[string]bool{
		"/var":                      true,
		"/var/log":                  true,
		"/var/log/app/x.log":        true,
		"/var/log/k/j/app/x.log":    true,
		"/var/log/k/j/app":          true,
		"/var/log/k/j/app/x.txt":    true, // could be a directory with app/ below
		"/var/log/app/x.txt":        true,
		"/var/log/x.txt":            true,
		"/etc/passwd":               false,
		"/var/lib":                  false,
		"/var/log/deep/a/b/c/d/e/f": true, // could hold app/ below
	} {
		if got := p.Relevant(path); got != want {
			t.Errorf("Relevant(%s) = %v, want %v", path, got, want)
		}
	}
	if !p.Match("/var/log/app/x.log") || !p.Match("/var/log/a/b/app/x.log") || p.Match("/var/log/app") {
		t.Error("Match")
	}
	deep := "/var/log" + strings.Repeat("/d", MaxDepth+2) + "/app/x.log"
	if p.Match(deep) {
		t.Error("** matched beyond MaxDepth")
	}
}
