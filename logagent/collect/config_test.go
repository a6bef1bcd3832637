package collect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`[{"path": "/var/log/nginx/access.log", "topic": "web_log"},
		{"path": "/var/log/app/*.log", "topic": "app_log", "key": "host", "exclude": ["/var/log/app/debug*.log"]}]`))
	if err != nil || len(c) != 2 || c[1].Key != "host" {
		t.Fatalf("%+v %v", c, err)
	}
	bad := map[string]string{
		`[{"path": "/a", "topic": "t"`: "invalid JSON",
		`{"path": "/a", "topic": "t"}`: "invalid JSON",
		`[{"path": "/a"}]`:             `entry 0: "topic" is missing`,
		`[{"topic": "t"}]`:             `entry 0: "path" is missing`,
		`[{"path": "/a", "topic": "t"}, {"path": "b", "topic": "t"}]`:  `entry 1: "path" "b" must be absolute`,
		`[{"path": "/a", "topic": "bad topic"}]`:                       `entry 0: "topic"`,
		`[{"path": "/a", "topic": "t", "tpoic": "x"}]`:                 `unknown field "tpoic"`,
		`[{"path": "/a", "topic": "t", "key": "random"}]`:              `"key" "random"`,
		`[{"path": "/a", "topic": "t"}, {"path": "/a", "topic": "u"}]`: "already entry 0",
		`[{"path": "/a[", "topic": "t"}]`:                              "not a valid glob",
		``:                                                             "empty value",
		`null`:                                                         "got null",
		`[{"path": 5, "topic": "t"}]`:                                  `field "path"`,
		`[{"path": "/a", "topic": "t", "dataset": "Nginx.Access"}]`:    `entry 0: "dataset": dataset "Nginx.Access": byte 0`,
		`[{"path": "/a", "topic": "t", "dataset": "nginx access"}]`:    `"dataset"`,
		`[{"path": "/a", "topic": "t", "dataset": ".nginx"}]`:          `starts or ends with '.'`,
		`[{"path": "/a", "topic": "t", "dataset": "` + strings.Repeat("a", 101) + `"}]`: "at most 100",
		`[{"path": "/a", "topic": "t", "timezone": "Mars/Olympus"}]`:                    `entry 0: "timezone": timezone "Mars/Olympus"`,
		`[{"path": "/a", "topic": "t", "timezone": "+5"}]`:                              `want ±hh:mm`,
		`[{"path": "/a", "topic": "t", "timezone": "../../etc/passwd"}]`:                `not an IANA name`,
		`[{"path": "/a", "topic": "t", "include_lines": ["("]}]`:                        `entry 0: "include_lines" 0: error parsing regexp`,
		`[{"path": "/a", "topic": "t", "exclude_lines": ["a", "[z-a]"]}]`:               `"exclude_lines" 1`,
	}
	for in, want := range bad {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", in, err, want)
		}
	}
}

// TestDatasetFields: a valid dataset, timezone and line filters are taken, and the
// filters keep what include_lines matches less what exclude_lines does.
func TestDatasetFields(t *testing.T) {
	c, err := Parse([]byte(`[{"path": "/a", "topic": "t", "dataset": "nginx.access", "timezone": "-03:30",
		"include_lines": ["^ERR", "^WARN"], "exclude_lines": ["noise"]},
		{"path": "/b", "topic": "t", "timezone": "America/Argentina/Buenos_Aires", "exclude_lines": ["^DEBUG"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if c[0].Dataset != "nginx.access" || c[0].Timezone != "-03:30" {
		t.Fatalf("%+v", c[0])
	}
	f, _ := c[0].LineFilter()
	g, _ := c[1].LineFilter()
	for _, x := range []struct {
		f    *LineFilter
		line string
		keep bool
	}{
		{f, "ERR disk full", true}, {f, "WARN slow", true}, {f, "INFO ok", false}, {f, "ERR noise", false},
		{g, "DEBUG x", false}, {g, "INFO x", true}, {nil, "anything", true},
	} {
		if x.f.Keep([]byte(x.line)) != x.keep {
			t.Errorf("%q: keep %v, want %v", x.line, !x.keep, x.keep)
		}
	}
	if _, _, ch := Diff(c, Config{{Path: "/a", Topic: "t", Dataset: "nginx.error"}, c[1]}); len(ch) != 1 {
		t.Fatal("a dataset change is not a change")
	}
	many := `[{"path": "/a", "topic": "t", "include_lines": [` + strings.Repeat(`"a",`, MaxLineFilters) + `"a"]}]`
	if _, err := Parse([]byte(many)); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("too many filters: %v", err)
	}
}

func TestMultilineConfig(t *testing.T) {
	c, err := Parse([]byte(`[{"path": "/a", "topic": "t", "multiline": {"pattern": "^\\d{4}-", "timeout": "500ms"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	ml, err := c[0].Multiline.Compile()
	if err != nil || ml.MaxLines != 500 || ml.Timeout.Milliseconds() != 500 || !ml.Start.MatchString("2026-11-22 x") || ml.Start.MatchString("  at x") {
		t.Fatalf("%+v %v", ml, err)
	}
	changed := Config{{Path: "/a", Topic: "t", Multiline: &Multiline{Pattern: "^x"}}}
	if _, _, ch := Diff(c, changed); len(ch) != 1 {
		t.Fatal("a multiline change is not a change")
	}
}

func TestDiff(t *testing.T) {
	prev := Config{{Path: "/a", Topic: "t"}, {Path: "/b", Topic: "t"}, {Path: "/c", Topic: "t"}}
	next := Config{{Path: "/a", Topic: "t"}, {Path: "/b", Topic: "u"}, {Path: "/d", Topic: "t"}}
	added, removed, changed := Diff(prev, next)
	if len(added) != 1 || added[0].Path != "/d" || len(removed) != 1 || removed[0].Path != "/c" || len(changed) != 1 || changed[0].Path != "/b" {
		t.Fatalf("added %v removed %v changed %v", added, removed, changed)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"path": "/var/log/x.log", "topic": "t"}]`))
	f.Add([]byte(`[{"path": "/a*", "topic": "t", "exclude": ["/a1"], "key": "none", "from": "end"}]`))
	f.Add([]byte(`[{"path": "/a/*/b.log", "topic": "t", "follow_symlinks": true, "multiline": {"pattern": "^\\d{4}-", "max_lines": 10, "timeout": "1s"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseBound.Check(t, len(data), func() {
			c, err := Parse(data)
			if err != nil {
				return
			}
			for _, e := range c {
				if e.validate() != nil {
					t.Fatalf("accepted an invalid entry %+v", e)
				}
			}
		})
	})
}

// parseBound is what parsing a collection config may cost: an entry, with its seen
// map slot and compiled multiline pattern, a few hundred bytes for at least 25 bytes
// of JSON.
var parseBound = fuzzbound.Bound{Fixed: 256 << 10, PerByte: 64, Time: 2 * time.Second}

func TestFollowSymlinks(t *testing.T) {
	c, err := Parse([]byte(`[{"path": "/var/log/*/app/*.log", "topic": "t", "follow_symlinks": true}, {"path": "/var/log/x.log", "topic": "t"}]`))
	if err != nil || !c[0].FollowSymlinks || c[1].FollowSymlinks {
		t.Fatalf("%+v %v", c, err)
	}
	if a := c[0].Access(); a.Trusted != "/var/log" || !a.FollowSymlinks {
		t.Fatalf("access %+v", a)
	}
	if a := c[1].Access(); a.Trusted != "/var/log" || a.FollowSymlinks {
		t.Fatalf("access %+v", a)
	}
	off := Config{{Path: "/var/log/*/app/*.log", Topic: "t"}}
	if _, _, ch := Diff(c[:1], off); len(ch) != 1 {
		t.Fatal("turning follow_symlinks off is not a change")
	}
}

func TestFieldsAndFormat(t *testing.T) {
	c, err := Parse([]byte(`[{"path": "/var/log/containers/*.log", "topic": "k8s", "format": "cri", "follow_symlinks": true, "fields": {"env": "prod", "team.name": "shop"}},
		{"path": "/var/log/**/*.log", "topic": "all"}]`))
	if err != nil || c[0].Format != "cri" || c[0].Fields["team.name"] != "shop" {
		t.Fatalf("%+v %v", c, err)
	}
	many := `{`
	for i := 0; i < MaxFields+1; i++ {
		if i > 0 {
			many += ","
		}
		many += fmt.Sprintf(`"f%d": "v"`, i)
	}
	many += `}`
	bad := map[string]string{
		`[{"path": "/a", "topic": "t", "format": "json"}]`:                                     `"format" "json"`,
		`[{"path": "/a", "topic": "t", "fields": {"": "v"}}]`:                                  `"fields": name ""`,
		`[{"path": "/a", "topic": "t", "fields": {"a b": "v"}}]`:                               `"fields": name "a b"`,
		`[{"path": "/a", "topic": "t", "fields": {"a..b": "v"}}]`:                              `"fields": name "a..b"`,
		`[{"path": "/a", "topic": "t", "fields": {"a": "` + strings.Repeat("x", 1025) + `"}}]`: `value of "a" is 1025 bytes`,
		`[{"path": "/a", "topic": "t", "fields": ` + many + `}]`:                               "at most 32",
	}
	for in, want := range bad {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.80s: err = %v, want it to say %q", in, err, want)
		}
	}
	a := Entry{Path: "/a", Topic: "t", Fields: map[string]string{"k": "v"}}
	b := Entry{Path: "/a", Topic: "t", Fields: map[string]string{"k": "w"}}
	f := Entry{Path: "/a", Topic: "t", Fields: map[string]string{"k": "v"}, Format: "docker"}
	if _, _, changed := Diff(Config{a}, Config{b}); len(changed) != 1 {
		t.Error("a changed field value is not a change")
	}
	if _, _, changed := Diff(Config{a}, Config{f}); len(changed) != 1 {
		t.Error("a changed format is not a change")
	}
	if _, _, changed := Diff(Config{a}, Config{a}); len(changed) != 0 {
		t.Error("the same entry changed")
	}
}
