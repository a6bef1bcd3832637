package document

import (
	"bytes"
	"encoding/json"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func agentRecord(value string, offset string) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{
		Topic: "web_log", Partition: 2, Offset: 987, Value: []byte(value),
		Timestamp: time.Date(2026, 11, 22, 10, 30, 0, 123e6, time.UTC),
		Headers: []*sarama.RecordHeader{
			{Key: []byte("host"), Value: []byte("web-1")},
			{Key: []byte("path"), Value: []byte("/var/log/nginx/access.log")},
			{Key: []byte("offset"), Value: []byte(offset)},
			{Key: []byte("file_id"), Value: []byte("803-1a2b-0")},
		},
	}
}

func TestBuild(t *testing.T) {
	ingest := func() time.Time { return time.Date(2026, 11, 22, 10, 30, 1, 500e6, time.UTC) }
	d := Builder{Now: ingest}.Build(agentRecord(`GET /index.html "quoted" \ <tag>`, "12345"))
	// @timestamp and message first, then the fields by name.
	want := `{"@timestamp":"2026-11-22T10:30:00.123Z","message":"GET /index.html \"quoted\" \\ \u003ctag\u003e","event":{"ingested":"2026-11-22T10:30:01.500Z"},"host":{"name":"web-1"},"kafka":{"offset":987,"partition":2,"topic":"web_log"},"log":{"file":{"path":"/var/log/nginx/access.log"},"offset":12345}}`
	if string(d.Body) != want {
		t.Fatalf("body\n%s\nwant\n%s", d.Body, want)
	}
	if d.Index != "web_log-2026.11.22" {
		t.Fatalf("index %s", d.Index)
	}
	// Golden id: base64url(sha256("web-1\x00803-1a2b-0\x0012345")[:15]).
	if d.ID != "cvTFZvD-vMUzX6oXgL8J" { // computed independently (python hashlib)
		t.Fatalf("id %s", d.ID)
	}
	// The same line re-delivered (other Kafka offset) keeps its id; another line does not.
	again := agentRecord("x", "12345")
	again.Offset = 5
	if (Builder{}).Build(again).ID != d.ID {
		t.Fatal("re-delivery changed the id")
	}
	if (Builder{}).Build(agentRecord("x", "12346")).ID == d.ID {
		t.Fatal("two lines share an id")
	}
}

func TestBuildForeignRecord(t *testing.T) {
	m := &sarama.ConsumerMessage{Topic: "App_Log", Partition: 1, Offset: 42, Value: []byte("bad \xff utf8"), Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	d := Builder{IndexPattern: "logs-{topic}"}.Build(m)
	if d.Index != "logs-app_log" {
		t.Fatalf("index %s", d.Index)
	}
	var doc map[string]any
	if err := json.Unmarshal(d.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["message"] != "bad \uFFFD utf8" || doc["host"] != nil {
		t.Fatalf("%s", d.Body)
	}
	if d.ID != ID("App_Log", 1, 42, nil, nil, nil) || d.ID == ID("App_Log", 1, 43, nil, nil, nil) {
		t.Fatal("kafka-position id")
	}
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte("line"), []byte("h"), []byte("/p"), []byte("10"), []byte("id"))
	f.Add([]byte("\xff\x00\"\\"), []byte{}, []byte("\n"), []byte("x"), []byte{0xc3})
	f.Fuzz(func(t *testing.T, value, host, path, offset, fileID []byte) {
		m := &sarama.ConsumerMessage{Topic: "t", Value: value, Timestamp: time.Unix(1700000000, 0), Headers: []*sarama.RecordHeader{
			{Key: []byte("host"), Value: host}, {Key: []byte("path"), Value: path}, {Key: []byte("offset"), Value: offset}, {Key: []byte("file_id"), Value: fileID},
		}}
		d := Builder{}.Build(m)
		if !json.Valid(d.Body) {
			t.Fatalf("invalid JSON: %q", d.Body)
		}
		if d.ID == "" || d.Index == "" {
			t.Fatal("empty id or index")
		}
	})
}

// TestNewBuilderSameAsZero: the caching builder names indexes as the plain one does,
// across days and topics.
func TestNewBuilderSameAsZero(t *testing.T) {
	fixed := func() time.Time { return time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC) }
	cached := NewBuilder(Builder{IndexPattern: "{topic}-{date}", Now: fixed})
	for _, topic := range []string{"Web_Log", "app"} {
		for _, ts := range []time.Time{time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} {
			m := &sarama.ConsumerMessage{Topic: topic, Timestamp: ts, Value: []byte("x")}
			want := Builder{IndexPattern: "{topic}-{date}", Now: fixed}.Build(m)
			if got := cached.Build(m); got.Index != want.Index || got.ID != want.ID || string(got.Body) != string(want.Body) {
				t.Fatalf("%s %v: %+v, want %+v", topic, ts, got, want)
			}
		}
	}
}

func TestJSONDecoding(t *testing.T) {
	rec := func(topic, line string) *sarama.ConsumerMessage {
		return &sarama.ConsumerMessage{Topic: topic, Partition: 0, Offset: 1, Value: []byte(line), Timestamp: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	}
	under := NewBuilder(Builder{JSON: map[string]bool{"app": true}, JSONTarget: "json"})
	root := NewBuilder(Builder{JSON: map[string]bool{"*": true}})
	line := `{"level":"error","msg":"disk \"full\"","code":507,"ctx":{"user":"ann","ids":[1,2]},"message":"theirs","host":"h9"}`
	for _, c := range []struct {
		name string
		b    *Builder
		rec  *sarama.ConsumerMessage
		want map[string]any // top-level fields that must be there, JSON-compared
		not  []string       // top-level fields that must not be there
	}{
		{"under target", under, rec("app", line), map[string]any{
			"message": line,
			"json":    map[string]any{"level": "error", "msg": `disk "full"`, "code": 507.0, "ctx": map[string]any{"user": "ann", "ids": []any{1.0, 2.0}}, "message": "theirs", "host": "h9"},
		}, []string{"level", "error", "tags"}},
		{"at the top level, own fields win", root, rec("any", line), map[string]any{
			"message": line, "level": "error", "code": 507.0, "ctx": map[string]any{"user": "ann", "ids": []any{1.0, 2.0}},
		}, []string{"json", "error", "tags"}},
		{"other topic untouched", under, rec("web", line), map[string]any{"message": line}, []string{"json", "level", "tags"}},
		{"not an object", under, rec("app", `[1,2]`), map[string]any{"message": "[1,2]", "tags": []any{"_jsonparsefailure"}}, []string{"json"}},
		{"not JSON", under, rec("app", `GET /x 200`), map[string]any{"message": "GET /x 200", "tags": []any{"_jsonparsefailure"}}, []string{"json"}},
		{"truncated", under, rec("app", `{"a":1`), map[string]any{"tags": []any{"_jsonparsefailure"}}, []string{"json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := c.b.Build(c.rec)
			var got map[string]any
			if err := json.Unmarshal(d.Body, &got); err != nil {
				t.Fatalf("invalid document %s: %v", d.Body, err)
			}
			for k, v := range c.want {
				gj, _ := json.Marshal(got[k])
				wj, _ := json.Marshal(v)
				if string(gj) != string(wj) {
					t.Errorf("%s = %s, want %s", k, gj, wj)
				}
			}
			for _, k := range c.not {
				if _, ok := got[k]; ok {
					t.Errorf("%s present: %s", k, d.Body)
				}
			}
			if h, ok := got["host"].(map[string]any); c.rec.Headers == nil && ok {
				t.Errorf("host replaced: %v", h)
			}
			if tags, ok := got["tags"]; ok {
				if e, _ := got["error"].(map[string]any); e == nil || !strings.HasPrefix(e["message"].(string), "json: ") {
					t.Errorf("tags %v without error.message: %s", tags, d.Body)
				}
			}
		})
	}
}

// FuzzBuildJSON: whatever the line, with JSON decoding on or off, the document is valid
// JSON and keeps the line in message.
func FuzzBuildJSON(f *testing.F) {
	for _, s := range []string{`{"time":"2027-01-15T08:00:00Z","event":{"x":1}}`, `{"a":{"b":1800000000000}}`, `{"a":1}`, `{"message":"x","b":[1,{"c":null}]}`, `[1]`, `{"a":"\xff"}`, "plain \x00 line", `{"a":1}{"b":2}`, `{"k":"\u2028"}`, ""} {
		f.Add([]byte(s))
	}
	builders := []*Builder{
		NewBuilder(Builder{}),
		NewBuilder(Builder{JSON: map[string]bool{"t": true}, JSONTarget: "json"}),
		NewBuilder(Builder{JSON: map[string]bool{"*": true}}),
		NewBuilder(Builder{JSON: map[string]bool{"*": true}, TimestampField: "a.b", TimestampFormat: "unix_ms"}),
		NewBuilder(Builder{JSON: map[string]bool{"*": true}, TimestampField: "time", MaxAge: time.Hour}),
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, b := range builders {
			d := b.Build(&sarama.ConsumerMessage{Topic: "t", Value: line, Timestamp: time.Unix(1_800_000_000, 0)})
			var doc struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal(d.Body, &doc); err != nil {
				t.Fatalf("invalid document for %q: %v\n%s", line, err, d.Body)
			}
			if want := strings.ToValidUTF8(string(line), "\uFFFD"); doc.Message != want {
				t.Fatalf("message %q, want %q", doc.Message, want)
			}
		}
	})
}

// TestJSONWithRawNewlinesIsOneLine: JSON allows raw newlines (and other whitespace)
// between tokens; the document must stay one NDJSON line whatever the line holds, and a
// value posing as a bulk action stays inside its string.
func TestJSONWithRawNewlinesIsOneLine(t *testing.T) {
	for _, target := range []string{"json", ""} {
		b := NewBuilder(Builder{JSON: map[string]bool{"*": true}, JSONTarget: target})
		for _, line := range []string{
			"{\n\"a\"\n:\n1\r\n,\"b\":\t[ 1 ,\n 2 ],\n\"c\": {\"d\" :\n\"e\"}\n}",
			"{\"x\":\n{\"index\":{\"_index\":\"victim\",\"_id\":\"1\"}}\n}",
			"{\"x\":\"}\\n{\\\"index\\\":{\\\"_index\\\":\\\"victim\\\"}}\\n{\"}",
		} {
			d := b.Build(&sarama.ConsumerMessage{Topic: "t", Value: []byte(line), Timestamp: time.Unix(1_800_000_000, 0)})
			if strings.ContainsAny(string(d.Body), "\r\n") {
				t.Fatalf("raw newline in %q", d.Body)
			}
			var doc map[string]any
			if err := json.Unmarshal(d.Body, &doc); err != nil || doc["tags"] != nil {
				t.Fatalf("%s: %v", d.Body, err)
			}
			if target == "" && doc["a"] == nil && doc["x"] == nil {
				t.Fatalf("fields lost: %s", d.Body)
			}
		}
	}
}

// TestTimestampWindow: a record timestamp more than MaxFuture ahead or MaxAge behind
// the clock is replaced by the clock, and kept in kafka.timestamp (epoch ms).
func TestTimestampWindow(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	b := NewBuilder(Builder{MaxFuture: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour, Now: func() time.Time { return now }})
	for _, c := range []struct {
		ts       time.Time
		replaced bool
	}{
		{now.Add(23 * time.Hour), false},
		{now.Add(25 * time.Hour), true},
		{time.UnixMilli(1 << 62), true},
		{now.Add(-29 * 24 * time.Hour), false},
		{now.Add(-31 * 24 * time.Hour), true},
		{time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		d := b.Build(&sarama.ConsumerMessage{Topic: "t", Value: []byte("x"), Timestamp: c.ts})
		var doc struct {
			Timestamp string `json:"@timestamp"`
			Kafka     struct {
				Timestamp *int64 `json:"timestamp"`
			} `json:"kafka"`
		}
		if err := json.Unmarshal(d.Body, &doc); err != nil {
			t.Fatal(err)
		}
		if d.TimestampReplaced != c.replaced {
			t.Fatalf("%v: replaced %v", c.ts, d.TimestampReplaced)
		}
		if c.replaced {
			if doc.Timestamp != "2026-11-27T12:00:00.000Z" || doc.Kafka.Timestamp == nil || *doc.Kafka.Timestamp != c.ts.UnixMilli() || d.Index != "t-2026.11.27" {
				t.Fatalf("%v: %s in %s", c.ts, d.Body, d.Index)
			}
		} else if doc.Kafka.Timestamp != nil || doc.Timestamp != c.ts.UTC().Format("2006-01-02T15:04:05.000Z07:00") {
			t.Fatalf("%v: %s", c.ts, d.Body)
		}
	}
}

// FuzzBuildOneLine: whatever the line and headers, with JSON decoding on, every
// document is one line of valid JSON, and building it allocates no more than a small
// multiple of its input.
func FuzzBuildOneLine(f *testing.F) {
	for _, s := range []string{"{\n\"a\"\n:\n1}", `{"a":[1,{"b":"\n"}]}`, "{\"a\":\"\xff\"\r\n}", `{"@timestamp":1,"kafka":{}}`, "x\ny"} {
		f.Add([]byte(s), []byte("h\n"), int64(1_800_000_000_000))
	}
	builders := []*Builder{
		NewBuilder(Builder{JSON: map[string]bool{"*": true}, JSONTarget: "json", MaxFuture: 24 * time.Hour, MaxAge: 720 * time.Hour}),
		NewBuilder(Builder{JSON: map[string]bool{"*": true}, MaxFuture: 24 * time.Hour, MaxAge: 720 * time.Hour}),
	}
	f.Fuzz(func(t *testing.T, line, host []byte, tsMillis int64) {
		m := &sarama.ConsumerMessage{Topic: "t", Value: line, Timestamp: time.UnixMilli(tsMillis), Headers: []*sarama.RecordHeader{
			{Key: []byte("host"), Value: host}, {Key: []byte("path"), Value: host}, {Key: []byte("offset"), Value: host},
		}}
		for _, b := range builders {
			// The allocation counter is the process's: take the least of three builds, so
			// that the fuzzing engine's own work and first-use caches do not count.
			var d Doc
			got := uint64(1 << 62)
			for range 3 {
				before := allocatedBytes()
				d = b.Build(m)
				got = min(got, allocatedBytes()-before)
			}
			if limit := uint64(64*(len(line)+len(host)) + 64<<10); got > limit {
				t.Fatalf("building a document of %d input bytes allocated %d bytes", len(line)+len(host), got)
			}
			if strings.ContainsAny(string(d.Body), "\r\n") || !json.Valid(d.Body) {
				t.Fatalf("not one line of JSON: %q", d.Body)
			}
		}
	})
}

func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestBuildAgentMetadata: an entry's fields go under labels, a container log's
// stream, pod, namespace and container to log.iostream, kubernetes.* and container.*,
// and the time the agent read a container line to event.created; decoded JSON does
// not replace them.
func TestBuildAgentMetadata(t *testing.T) {
	m := agentRecord(`{"labels":"mine","event":"x","level":"info"}`, "7")
	m.Headers = append(m.Headers,
		&sarama.RecordHeader{Key: []byte("fields.service"), Value: []byte("checkout")},
		&sarama.RecordHeader{Key: []byte("fields.env"), Value: []byte("prod \"eu\"")},
		&sarama.RecordHeader{Key: []byte("fields."), Value: []byte("ignored")},
		&sarama.RecordHeader{Key: []byte("stream"), Value: []byte("stderr")},
		&sarama.RecordHeader{Key: []byte("kubernetes.pod.name"), Value: []byte("web-0")},
		&sarama.RecordHeader{Key: []byte("kubernetes.namespace"), Value: []byte("shop")},
		&sarama.RecordHeader{Key: []byte("container.name"), Value: []byte("nginx")},
		&sarama.RecordHeader{Key: []byte("container.id"), Value: []byte("abc")},
		&sarama.RecordHeader{Key: []byte("event.created"), Value: []byte("2026-11-22T10:30:01.5Z")},
	)
	now := func() time.Time { return time.Date(2026, 11, 22, 10, 30, 2, 0, time.UTC) }
	d := Builder{JSON: map[string]bool{"*": true}, Now: now}.Build(m)
	want := `{"@timestamp":"2026-11-22T10:30:00.123Z","message":"{\"labels\":\"mine\",\"event\":\"x\",\"level\":\"info\"}",` +
		`"container":{"id":"abc","name":"nginx"},"event":{"created":"2026-11-22T10:30:01.500Z","ingested":"2026-11-22T10:30:02.000Z"},` +
		`"host":{"name":"web-1"},"kafka":{"offset":987,"partition":2,"topic":"web_log"},"kubernetes":{"namespace":"shop","pod":{"name":"web-0"}},` +
		`"labels":{"env":"prod \"eu\"","service":"checkout"},"level":"info",` +
		`"log":{"file":{"path":"/var/log/nginx/access.log"},"iostream":"stderr","offset":7}}`
	if string(d.Body) != want {
		t.Fatalf("body\n%s\nwant\n%s", d.Body, want)
	}
	if !json.Valid(d.Body) {
		t.Fatal("invalid JSON")
	}
	if d.ID != (Builder{}).Build(agentRecord("x", "7")).ID {
		t.Fatal("metadata changed the document id")
	}
}

// TestTimestampField: a JSON line's own time becomes @timestamp (and picks the daily
// index), the agent's read time goes to event.created, event.ingested is always set,
// and a line's own event object is merged into the one "event" key (never two).
func TestTimestampField(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }
	read := time.Date(2026, 11, 23, 7, 59, 59, 0, time.UTC)
	for _, c := range []struct {
		format, line, wantTS string
		unparsed             bool
	}{
		{"", `{"time":"2026-11-22T23:59:58.25+01:00","event":{"kind":"x","created":"bogus"},"m":1}`, "2026-11-22T22:59:58.250Z", false},
		{"unix_ms", `{"time":1795334400123}`, "2026-11-22T08:00:00.123Z", false},
		{"unix", `{"time":"1795334400.5"}`, "2026-11-22T08:00:00.500Z", false},
		{"02/Jan/2006:15:04:05 -0700", `{"time":"22/Nov/2026:10:00:00 +0000"}`, "2026-11-22T10:00:00.000Z", false},
		{"", `{"time":"yesterday"}`, "2026-11-23T07:59:59.000Z", true},
		{"", `{"time":"1999-01-01T00:00:00Z"}`, "2026-11-23T07:59:59.000Z", true}, // older than MaxAge
		{"", `{"nested":{"time":"2026-11-22T01:00:00Z"}}`, "2026-11-23T07:59:59.000Z", false},
	} {
		b := Builder{JSON: map[string]bool{"*": true}, TimestampField: "time", TimestampFormat: c.format, Now: now, MaxAge: 30 * 24 * time.Hour}
		d := b.Build(&sarama.ConsumerMessage{Topic: "app", Value: []byte(c.line), Timestamp: read})
		var doc struct {
			TS    string `json:"@timestamp"`
			Event struct {
				Created, Ingested, Kind string
			} `json:"event"`
		}
		if err := json.Unmarshal(d.Body, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.TS != c.wantTS || d.TimestampUnparsed != c.unparsed || doc.Event.Ingested != "2026-11-23T08:00:00.000Z" ||
			(doc.Event.Created != "") != (doc.TS != "2026-11-23T07:59:59.000Z") || d.Index != "app-"+doc.TS[:4]+"."+doc.TS[5:7]+"."+doc.TS[8:10] {
			t.Fatalf("%s %s: %+v %s", c.format, c.line, doc, d.Body)
		}
		if bytes.Count(d.Body, []byte(`"event"`)) != 1 {
			t.Fatalf("event twice: %s", d.Body)
		}
	}
	b := Builder{JSON: map[string]bool{"*": true}, TimestampField: "nested.time", Now: now}
	d := b.Build(&sarama.ConsumerMessage{Topic: "app", Value: []byte(`{"nested":{"time":"2026-11-22T01:00:00Z"},"event":{"kind":"k"}}`), Timestamp: read})
	if !bytes.Contains(d.Body, []byte(`"@timestamp":"2026-11-22T01:00:00.000Z"`)) || !bytes.Contains(d.Body, []byte(`"event":{"created":"2026-11-23T07:59:59.000Z","ingested":"2026-11-23T08:00:00.000Z","kind":"k"}`)) {
		t.Fatalf("nested: %s", d.Body)
	}
}
