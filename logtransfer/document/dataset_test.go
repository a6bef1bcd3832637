package document

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/logtransfer/parse"
)

func datasets(t testing.TB) *parse.Set {
	t.Helper()
	set, err := parse.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// datasetRecord is an agent's record of dataset, read at 2026-12-04 21:13:00 UTC on a
// host in zone.
func datasetRecord(line, dataset, zone string) *sarama.ConsumerMessage {
	m := agentRecord(line, "100")
	m.Timestamp = time.Date(2026, 12, 4, 21, 13, 0, 0, time.UTC)
	if dataset != "" {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(record.Dataset), Value: []byte(dataset)})
	}
	if zone != "" {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(record.Timezone), Value: []byte(zone)})
	}
	return m
}

func decode(t *testing.T, d Doc) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(d.Body, &doc); err != nil || strings.ContainsAny(string(d.Body), "\r\n") {
		t.Fatalf("not one line of JSON: %v\n%s", err, d.Body)
	}
	return doc
}

// get returns a dotted field of a decoded document.
func get(doc map[string]any, name string) any {
	var v any = doc
	for _, p := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// TestDatasetDocument: a record of a known dataset is parsed: its fields join the
// document as numbers and strings, the line's own time is @timestamp and the read time
// event.created, the dataset and timezone are in event and data_stream.
func TestDatasetDocument(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 4, 21, 13, 1, 0, time.UTC) }
	b := NewBuilder(Builder{Datasets: datasets(t), Now: now, MaxFuture: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour,
		IndexPattern: "logs-{dataset}-{date}"})
	line := `203.0.113.9 - alice [04/Dec/2026:22:12:59 +0100] "GET /search?q=a%20b HTTP/1.1" 404 153 "https://example.com/" "curl/8.5.0"`
	d := b.Build(datasetRecord(line, "nginx.access", "Europe/Berlin"))
	doc := decode(t, d)
	for name, want := range map[string]any{
		"@timestamp": "2026-12-04T21:12:59.000Z", "message": line, "event.created": "2026-12-04T21:13:00.000Z",
		"event.ingested": "2026-12-04T21:13:01.000Z", "event.dataset": "nginx.access", "data_stream.dataset": "nginx.access",
		"event.timezone": "Europe/Berlin", "source.ip": "203.0.113.9", "source.address": "203.0.113.9", "user.name": "alice",
		"http.request.method": "GET", "url.original": "/search?q=a%20b", "http.version": "1.1",
		"http.response.status_code": 404.0, "http.response.body.bytes": 153.0, "http.request.referrer": "https://example.com/",
		"user_agent.original": "curl/8.5.0", "host.name": "web-1", "log.offset": 100.0, "kafka.offset": 987.0,
	} {
		if got := get(doc, name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	if doc["tags"] != nil || doc["error"] != nil || d.ParseFailed || d.UnknownDataset || d.Dataset != "nginx.access" {
		t.Errorf("%+v %s", d, d.Body)
	}
	if d.Index != "logs-nginx.access-2026.12.04" {
		t.Errorf("index %s", d.Index)
	}
	if d.ID != (Builder{}).Build(datasetRecord("x", "", "")).ID {
		t.Error("the dataset changed the document id")
	}

	// An error log: message is the text after the header; a time without zone is
	// read in event.timezone.
	d = b.Build(datasetRecord(`2026/12/04 22:10:00 [error] 31#31: *7 open() "/x" failed (2: No such file or directory), client: 10.0.0.1`, "nginx.error", "+01:00"))
	doc = decode(t, d)
	if get(doc, "@timestamp") != "2026-12-04T21:10:00.000Z" || get(doc, "log.level") != "error" || get(doc, "process.pid") != 31.0 ||
		get(doc, "nginx.error.connection_id") != 7.0 || !strings.HasPrefix(doc["message"].(string), `open() "/x" failed`) || get(doc, "log.file.path") == nil {
		t.Errorf("nginx.error: %s", d.Body)
	}
}

// TestParseFailure: a line its dataset's parser does not match is indexed all the
// same, with its message, the tag _parsefailure and an error.message that names the
// dataset; a dataset no parser knows is indexed unparsed, and an invalid dataset name
// is ignored.
func TestParseFailure(t *testing.T) {
	b := NewBuilder(Builder{Datasets: datasets(t)})
	d := b.Build(datasetRecord("this is not an access log line", "nginx.access", "UTC"))
	doc := decode(t, d)
	if !d.ParseFailed || doc["message"] != "this is not an access log line" || get(doc, "tags.0") != nil ||
		!strings.HasPrefix(get(doc, "error.message").(string), "nginx.access: ") || get(doc, "event.dataset") != "nginx.access" {
		t.Fatalf("%+v %s", d, d.Body)
	}
	if tags, _ := doc["tags"].([]any); len(tags) != 1 || tags[0] != "_parsefailure" {
		t.Fatalf("tags %v", doc["tags"])
	}
	if get(doc, "source") != nil || get(doc, "http") != nil {
		t.Fatalf("fields of a failed parse kept: %s", d.Body)
	}

	d = b.Build(datasetRecord("GET / 200", "my.app", "UTC"))
	doc = decode(t, d)
	if !d.UnknownDataset || d.ParseFailed || doc["tags"] != nil || get(doc, "event.dataset") != "my.app" {
		t.Fatalf("unknown dataset: %+v %s", d, d.Body)
	}
	d = b.Build(datasetRecord("x", "Bad Name", "Not/AZone"))
	doc = decode(t, d)
	if d.Dataset != "" || get(doc, "event.dataset") != nil || get(doc, "event.timezone") != nil {
		t.Fatalf("invalid headers used: %s", d.Body)
	}
}

// TestParsedTimeBounds: a line's own time outside max_timestamp_future /
// max_timestamp_age is not used: @timestamp stays the read time, so a crafted line
// cannot create one index per day.
func TestParsedTimeBounds(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 4, 21, 13, 1, 0, time.UTC) }
	b := NewBuilder(Builder{Datasets: datasets(t), Now: now, MaxFuture: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour})
	for _, ts := range []string{"04/Dec/1999:10:00:00 +0000", "04/Dec/2031:10:00:00 +0000"} {
		d := b.Build(datasetRecord(`1.2.3.4 - - [`+ts+`] "GET / HTTP/1.1" 200 1 "-" "-"`, "nginx.access", "UTC"))
		doc := decode(t, d)
		if !d.TimestampUnparsed || doc["@timestamp"] != "2026-12-04T21:13:00.000Z" || d.Index != "web_log-2026.12.04" {
			t.Errorf("%s: %+v %s", ts, d, d.Body)
		}
	}
}

// TestSyslogYear: a syslog time without a year takes the year that puts it nearest
// before the read time: a December line read on 2 January is last year's.
func TestSyslogYear(t *testing.T) {
	b := NewBuilder(Builder{Datasets: datasets(t), Now: func() time.Time { return time.Date(2027, 1, 2, 0, 0, 5, 0, time.UTC) }})
	m := datasetRecord(`Dec 31 23:59:58 web-1 sshd[812]: Accepted publickey for deploy from 198.51.100.7 port 50022 ssh2: ED25519 SHA256:abc`, "system.auth", "UTC")
	m.Timestamp = time.Date(2027, 1, 2, 0, 0, 1, 0, time.UTC)
	d := b.Build(m)
	doc := decode(t, d)
	for name, want := range map[string]any{"@timestamp": "2026-12-31T23:59:58.000Z", "host.hostname": "web-1", "process.name": "sshd",
		"process.pid": 812.0, "user.name": "deploy", "source.ip": "198.51.100.7", "source.port": 50022.0,
		"system.auth.ssh.event": "Accepted", "system.auth.ssh.method": "publickey", "event.outcome": "success", "host.name": "web-1"} {
		if got := get(doc, name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
}

// TestParsedFieldsNeverReplaceOwn: whatever a parser or a JSON line brings, logpipe's
// own fields keep their values, and a value never stands where an object is.
func TestParsedFieldsNeverReplaceOwn(t *testing.T) {
	b := NewBuilder(Builder{JSON: map[string]bool{"*": true}, JSONTarget: ""})
	line := `{"host":"h9","kafka":{"offset":1},"log":{"level":"warn","offset":5},"event":{"created":"bogus","kind":"k"},"data_stream":{"dataset":"x"},"message":"theirs","@timestamp":"1999-01-01T00:00:00Z","http":{"version":"2"}}`
	doc := decode(t, b.Build(agentRecord(line, "7")))
	for name, want := range map[string]any{"host.name": "web-1", "kafka.offset": 987.0, "log.offset": 7.0, "log.level": "warn",
		"event.kind": "k", "message": line, "@timestamp": "2026-11-22T10:30:00.123Z", "http.version": "2"} {
		if got := get(doc, name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	if get(doc, "event.created") != nil || doc["data_stream"] != nil {
		t.Errorf("reserved fields set: %v", doc)
	}
}

// BenchmarkBuild is the cost of a document: unparsed, and parsed as nginx.access; the
// difference is the parse cost per document.
func BenchmarkBuild(b *testing.B) {
	line := `203.0.113.9 - - [04/Dec/2026:22:12:59 +0100] "GET /api/v1/orders/4711 HTTP/1.1" 200 5120 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"`
	bl := NewBuilder(Builder{Datasets: datasets(b), MaxFuture: 24 * time.Hour, MaxAge: 30 * 24 * 365 * time.Hour})
	for _, c := range []struct{ name, dataset string }{{"unparsed", ""}, {"nginx.access", "nginx.access"}} {
		m := datasetRecord(line, c.dataset, "Europe/Berlin")
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				bl.Build(m)
			}
		})
	}
}

func TestAppendDate(t *testing.T) {
	for _, ts := range []time.Time{time.Date(2026, 12, 4, 21, 13, 0, 123456789, time.FixedZone("x", -3600)), time.Unix(0, 0),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(5, 1, 2, 3, 4, 5, 6e6, time.UTC)} {
		want := `"` + ts.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`
		if got := string(appendDate(nil, ts)); got != want {
			t.Errorf("%v: %s, want %s", ts, got, want)
		}
	}
}
