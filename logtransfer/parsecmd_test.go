package logtransfer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "logtransfer.ini")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseCommand: `logtransfer parse` prints the document of each line, built-in
// and custom datasets alike, a line that does not match shown with _parsefailure.
func TestParseCommand(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "[output]\ntype = file\n[dataset.myapp]\nparser = logfmt\ntime_field = ts\ntypes = took:long\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	in := `192.0.2.1 - - [04/Dec/2026:21:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"` + "\nnot an access line\r\n"
	if err := ParseLines(cfg, "nginx.access", "UTC", strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d documents:\n%s", len(lines), out.String())
	}
	var ok, bad map[string]any
	if json.Unmarshal([]byte(lines[0]), &ok) != nil || json.Unmarshal([]byte(lines[1]), &bad) != nil {
		t.Fatalf("not JSON:\n%s", out.String())
	}
	if ok["@timestamp"] != "2026-12-04T21:00:00.000Z" || ok["http"].(map[string]any)["response"].(map[string]any)["status_code"] != 200.0 || ok["tags"] != nil {
		t.Errorf("parsed: %s", lines[0])
	}
	if bad["message"] != "not an access line" || bad["tags"].([]any)[0] != "_parsefailure" {
		t.Errorf("failure: %s", lines[1])
	}

	out.Reset()
	if err := ParseLines(cfg, "myapp", "+02:00", strings.NewReader("ts=2026-12-04T21:00:00Z level=warn took=12 msg=\"slow query\"\n"), &out); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc["@timestamp"] != "2026-12-04T21:00:00.000Z" || doc["took"] != 12.0 || doc["level"] != "warn" {
		t.Errorf("custom: %v %s", err, out.String())
	}
	for _, c := range []struct{ dataset, zone, want string }{
		{"nope", "", `unknown dataset "nope"`}, {"Bad", "", "--dataset"}, {"myapp", "Mars/Base", "--timezone"},
	} {
		if err := ParseLines(cfg, c.dataset, c.zone, strings.NewReader(""), &out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.dataset, c.zone, err, c.want)
		}
	}
}

// TestDatasetConfig: invalid custom datasets are refused at start with the section
// that is wrong.
func TestDatasetConfig(t *testing.T) {
	for text, want := range map[string]string{
		"[dataset.x]\nparser = regex\npattern = `(`\n":   "dataset",
		"[dataset.x]\nparser = grok\n":                   "grok",
		"[dataset.Bad]\nparser = json\n":                 "[dataset.Bad]",
		"[dataset.x]\nparser = json\ntypes = a\n":        "[dataset.x] types",
		"[dataset.x]\nparser = json\nunknown_key = 1\n":  `unknown key "unknown_key"`,
		"[es]\nmode = data_stream\ndata_stream = logs\n": "{dataset} or {topic}",
		"[es]\nindex = logs-{date}\n":                    "needs {topic} or {dataset}",
	} {
		if !strings.HasPrefix(text, "[es]") {
			text = "[output]\ntype = file\n" + text
		}
		if _, err := LoadConfig(writeConfig(t, text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
