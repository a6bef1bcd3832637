package logagent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/internal/wait"
)

// TestDatasetAndLineFilters: an entry's dataset and timezone travel as headers (the
// host's zone where the entry names none), and lines that include_lines or
// exclude_lines leave out are not sent but acknowledged: the file's offset reaches
// its end, and a restart sends nothing again.
func TestDatasetAndLineFilters(t *testing.T) {
	e := newEnv(t)
	access := filepath.Join(e.dir, "access.log")
	app := filepath.Join(e.dir, "app.log")
	lines := []struct {
		text string
		kept bool
	}{
		{`GET /index.html 200`, true},
		{`GET /healthz 200`, false},  // excluded
		{`debug: cache warm`, false}, // not included
		{`POST /login 302`, true},
		{`PUT /x 201`, false}, // not included
		{`GET /healthz?probe=1 200`, false},
		{`GET /end 200`, true}, // the fence: the last line kept
	}
	f, err := os.Create(access)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		fmt.Fprintln(f, l.text)
	}
	f.Close()
	appendLines(t, app, "app", 0, 3)
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log", "dataset": "nginx.access", "timezone": "Europe/Berlin",
		"include_lines": ["^GET ", "^POST "], "exclude_lines": ["healthz"]},
		{"path": %q, "topic": "app_log"}]`, access, app))
	c := consume(t, e.broker.Addr(), "web_log", "app_log")
	dataDir := t.TempDir()
	ag := start(t, e.config(dataDir))

	wait.For(t, 20*time.Second, "the last kept line and the app lines", func() bool {
		return linesOf(c.records(), access)["GET /end 200"] == 1 && len(linesOf(c.records(), app)) == 3
	})
	got := linesOf(c.records(), access)
	for _, l := range lines {
		if n := got[l.text]; l.kept && n != 1 || !l.kept && n != 0 {
			t.Errorf("%q arrived %d times (kept: %v)", l.text, n, l.kept)
		}
	}
	for _, r := range c.records() {
		switch r.path {
		case access:
			if r.headers[record.Dataset] != "nginx.access" || r.headers[record.Timezone] != "Europe/Berlin" {
				t.Errorf("access record headers %v", r.headers)
			}
		case app:
			if _, ok := r.headers[record.Dataset]; ok || r.headers[record.Timezone] != ag.a.zone || ag.a.zone == "" {
				t.Errorf("app record headers %v (host zone %q)", r.headers, ag.a.zone)
			}
		}
	}
	fi, err := os.Stat(access)
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the access log acknowledged to its end", func() bool {
		for _, st := range ag.a.Status() {
			if st.Path == access {
				return st.Offset == fi.Size()
			}
		}
		return false
	})
	if n := metricValue(t, ag.a, "logagent_lines_filtered_total", access); n != 4 {
		t.Errorf("logagent_lines_filtered_total %v, want 4", n)
	}

	// After a restart nothing is sent again: a new kept line is the only one.
	ag.stop(t)
	appendLines(t, access, "GET", 0, 1) // "GET line 000000"
	start(t, e.config(dataDir))
	wait.For(t, 20*time.Second, "the line written while stopped", func() bool { return linesOf(c.records(), access)["GET line 000000"] == 1 })
	if n := len(c.records()); n != 3+3+1 {
		t.Fatalf("%d records after the restart, want 7", n)
	}
}
