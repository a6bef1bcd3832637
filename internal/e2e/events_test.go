package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/proctest"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/internal/wait"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestPipelineEvents runs nginx, error and syslog lines through the whole pipeline
// (agent, broker and transfer as processes, with their shipped defaults but for
// addresses and directories) into the Elasticsearch stand-in, which checks every
// document against the index template's mappings: the lines become events with
// their fields, their own time as @timestamp, and the zone they were written in; a
// line its parser does not match is indexed with _parsefailure; lines that
// exclude_lines names are not shipped.
func TestPipelineEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	root := t.TempDir()
	bin := proctest.Build(t, filepath.Join(root, "bin"), "broker", "logagent", "logtransfer")
	logs := filepath.Join(root, "logs")
	os.MkdirAll(logs, 0o755)
	etcd, err := embedetcd.Start(filepath.Join(root, "etcd"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	es, err := estest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	out, _ := os.Create(filepath.Join(root, "components.log"))
	defer out.Close()
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(out.Name())
			t.Logf("component logs:\n%s", data[max(0, len(data)-20000):])
		}
	})
	conf := func(name, text string) string {
		p := filepath.Join(root, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	brokerAddr := proctest.FreeAddr(t)
	procs := []*proc{
		{tb: t, name: "broker", log: out, args: []string{filepath.Join(bin, "broker"), "-config", conf("broker.ini", fmt.Sprintf(
			"[server]\nlisten = %s\nadvertised = %s\n[log]\ndir = %s\n[metrics]\nlisten =\n", brokerAddr, brokerAddr, filepath.Join(root, "broker")))}},
		{tb: t, name: "logtransfer", log: out, args: []string{filepath.Join(bin, "logtransfer"), "-config", conf("logtransfer.ini", fmt.Sprintf(
			"[kafka]\nbrokers = %s\ntopics = /.*_log$/\n[es]\nurls = %s\n[metrics]\nlisten =\n", brokerAddr, es.URL()))}},
		{tb: t, name: "logagent", log: out, args: []string{filepath.Join(bin, "logagent"), "-config", conf("logagent.ini", fmt.Sprintf(
			"[agent]\nhost = web-1\ndata_dir = %s\n[etcd]\nendpoints = %s\n[kafka]\nbrokers = %s\n[metrics]\nlisten =\n",
			filepath.Join(root, "agent"), etcd.Endpoint(), brokerAddr))}},
	}
	for _, p := range procs {
		p.start()
		defer p.stop()
	}

	// Lines as the servers write them, a few minutes old (inside the default
	// max_timestamp_age), in Berlin time.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := time.Now().Add(-5 * time.Minute).Truncate(time.Second).In(berlin)
	http := at.Format("02/Jan/2006:15:04:05 -0700")
	access := []string{
		`203.0.113.9 - alice [` + http + `] "GET /search?q=a%20b HTTP/1.1" 404 153 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"`,
		`10.0.0.2, 10.0.0.1, 85.181.35.98 - - [` + http + `] "POST /api/v1/orders HTTP/2.0" 201 15 "-" "curl/8.5.0"`,
		`2001:db8::7 - - [` + http + `] "-" 400 0 "-" "-"`,
		`198.51.100.4 - - [` + http + `] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"`, // excluded
		`this is no access log line`,
	}
	errorLog := []string{at.Format("2006/01/02 15:04:05") + ` [error] 31#31: *7 open() "/srv/www/favicon.ico" failed (2: No such file or directory), client: 203.0.113.9, server: example.com, request: "GET /favicon.ico HTTP/1.1", host: "example.com"`}
	host, _ := record.ParseZone(record.HostZone())
	syslogAt := time.Now().Add(-3 * time.Minute).Truncate(time.Second).In(host)
	syslog := []string{syslogAt.Format(time.Stamp) + ` web-1 CRON[4242]: (root) CMD (run-parts /etc/cron.hourly)`}
	files := map[string][]string{"access.log": access, "error.log": errorLog, "syslog": syslog}
	for name, lines := range files {
		if err := os.WriteFile(filepath.Join(logs, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/logagent/web-1/collect_config", fmt.Sprintf(`[
		{"path": %q, "topic": "web_log", "dataset": "nginx.access", "timezone": "Europe/Berlin", "exclude_lines": ["GET /healthz "]},
		{"path": %q, "topic": "web_log", "dataset": "nginx.error", "timezone": "Europe/Berlin"},
		{"path": %q, "topic": "sys_log", "dataset": "system.syslog"}]`,
		filepath.Join(logs, "access.log"), filepath.Join(logs, "error.log"), filepath.Join(logs, "syslog"))); err != nil {
		t.Fatal(err)
	}

	want := len(access) - 1 + len(errorLog) + len(syslog)
	wait.For(t, 90*time.Second, "every shipped line indexed", func() bool { return es.Count("*") >= want })
	// The documents by the line they came from: file and offset.
	offsets := map[string]string{} // "file:offset" -> line
	for name, lines := range files {
		off := 0
		for _, l := range lines {
			offsets[fmt.Sprintf("%s:%d", name, off)] = l
			off += len(l) + 1
		}
	}
	docs := map[string]map[string]any{} // by line
	for _, d := range es.Docs("*") {
		var doc struct {
			Log struct {
				File   struct{ Path string }
				Offset int
			}
		}
		var all map[string]any
		if json.Unmarshal(d.Source, &doc) != nil || json.Unmarshal(d.Source, &all) != nil {
			t.Fatalf("document %s", d.Source)
		}
		docs[offsets[fmt.Sprintf("%s:%d", filepath.Base(doc.Log.File.Path), doc.Log.Offset)]] = all
	}
	if len(docs) != want || es.Count("*") != want || docs[""] != nil {
		t.Fatalf("%d documents (%d lines), want %d", es.Count("*"), len(docs), want)
	}
	get := func(doc map[string]any, name string) any {
		var v any = doc
		for _, p := range strings.Split(name, ".") {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		return v
	}
	utc := func(ts time.Time) string { return ts.UTC().Format("2006-01-02T15:04:05.000Z") }
	check := func(line string, fields map[string]any) {
		t.Helper()
		doc := docs[line]
		if doc == nil {
			t.Errorf("no document for %q", line)
			return
		}
		for name, v := range fields {
			if got := get(doc, name); fmt.Sprint(got) != fmt.Sprint(v) {
				t.Errorf("%q: %s = %v, want %v", line[:min(40, len(line))], name, got, v)
			}
		}
	}
	check(access[0], map[string]any{"message": access[0], "@timestamp": utc(at), "event.dataset": "nginx.access", "event.timezone": "Europe/Berlin",
		"source.ip": "203.0.113.9", "user.name": "alice", "http.request.method": "GET", "url.original": "/search?q=a%20b",
		"http.version": "1.1", "http.response.status_code": 404.0, "http.response.body.bytes": 153.0,
		"http.request.referrer": "https://example.com/", "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
		"host.name": "web-1", "data_stream.dataset": "nginx.access"})
	check(access[1], map[string]any{"source.ip": "85.181.35.98", "http.request.method": "POST", "http.response.status_code": 201.0})
	check(access[2], map[string]any{"source.ip": "2001:db8::7", "http.response.status_code": 400.0, "http.request.method": nil})
	check(access[4], map[string]any{"tags": []any{"_parsefailure"}, "event.dataset": "nginx.access"})
	if e := get(docs[access[4]], "error.message"); e == nil || !strings.HasPrefix(e.(string), "nginx.access: ") {
		t.Errorf("parse failure's error.message %v", e)
	}
	check(errorLog[0], map[string]any{"@timestamp": utc(at), "log.level": "error", "process.pid": 31.0, "process.thread.id": 31.0,
		"nginx.error.connection_id": 7.0})
	if m := get(docs[errorLog[0]], "message"); m == nil || !strings.HasPrefix(m.(string), `open() "/srv/www/favicon.ico" failed`) {
		t.Errorf("nginx.error message %v", m)
	}
	check(syslog[0], map[string]any{"@timestamp": utc(syslogAt), "host.hostname": "web-1", "process.name": "CRON",
		"process.pid": 4242.0, "event.timezone": record.HostZone()})
	// When the agent read a line is event.created where the line's own time is
	// @timestamp; a line without its own time has the read time as @timestamp.
	for line, doc := range docs {
		if (get(doc, "event.created") == nil) != (line == access[4]) {
			t.Errorf("%q: event.created %v", line, get(doc, "event.created"))
		}
	}
	// The template mapped the parsed fields: Kibana can aggregate them.
	index := "web_log-" + at.UTC().Format("2006.01.02")
	m := es.Mapping(index)
	for name, typ := range map[string]string{"http.response.status_code": "long", "source.ip": "ip", "url.original": "keyword",
		"@timestamp": "date", "event.dataset": "keyword", "process.pid": "long", "message": "text"} {
		if m[name] != typ {
			t.Errorf("%s mapped %q, want %q", name, m[name], typ)
		}
	}
}
