// Package document turns a Kafka record into the Elasticsearch document logpipe
// indexes, with Elastic Common Schema field names and a deterministic id.
package document

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/jsonstr"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/logtransfer/parse"
)

// Doc is a document ready to index.
type Doc struct {
	Index string
	ID    string
	Body  []byte // the JSON document: one line (no raw newline), valid JSON
	// TimestampReplaced says that the record's timestamp was outside the window the
	// builder accepts, so @timestamp is the time of indexing and kafka.timestamp keeps
	// the record's own (epoch milliseconds).
	TimestampReplaced bool
	// TimestampUnparsed: the line has a time of its own (Builder.TimestampField, or
	// its dataset's) but it could not be used.
	TimestampUnparsed bool
	// Dataset is the record's dataset ("" none); ParseFailed says that its parser did
	// not match the line, UnknownDataset that no parser has its name.
	Dataset                     string
	ParseFailed, UnknownDataset bool
}

// Builder builds documents; IndexPattern may hold {topic}, {dataset} (the record's,
// else its topic) and {date} (yyyy.MM.dd, UTC, of @timestamp). Its zero value works;
// NewBuilder's also remembers index names.
type Builder struct {
	IndexPattern string
	// Datasets are the parsers a record's dataset (header event.dataset) chooses; nil:
	// no parsing. A record whose dataset the set does not know is indexed unparsed.
	Datasets *parse.Set
	// JSON decodes the lines of these topics ("*": every topic) as JSON objects into
	// the document (see Build).
	JSON map[string]bool
	// JSONTarget is the field the decoded object goes under; "" puts its keys at the
	// top level of the document, beside (never over) logpipe's own fields.
	JSONTarget string
	// MaxFuture and MaxAge bound the times used as @timestamp, the record's and the
	// line's own: one more than MaxFuture ahead of the clock, or more than MaxAge
	// behind it, is not used (a record's is replaced by the time of indexing and kept
	// in kafka.timestamp), so that a producer's clock or a crafted line cannot create
	// one index per day. Zero: no bound.
	MaxFuture, MaxAge time.Duration
	// TimestampField names the field of a JSON line (a dotted path for nested
	// objects: "log.time") that sets @timestamp; the record's timestamp (when the
	// agent read the line) then goes to event.created. A value that does not parse,
	// or falls outside MaxFuture/MaxAge, leaves @timestamp alone and sets
	// TimestampUnparsed.
	TimestampField string
	// TimestampFormat is how that field is written: "" (RFC 3339), "unix" (seconds,
	// may have a fraction), "unix_ms", or a Go time layout.
	TimestampFormat string
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	json   parse.Parser  // JSON lines' decoder
	names  *sync.Map     // indexKey -> string; nil: computed every time
	nNames *atomic.Int64 // entries in names, at most maxNames
	zones  *zoneCache
}

// maxNames bounds the index names a builder remembers.
const maxNames = 4096

// indexKey is what an index name depends on.
type indexKey struct {
	topic, dataset string
	day            int64 // days since the epoch, UTC
}

// NewBuilder returns a copy of b that computes each index name once per topic,
// dataset and day and each time zone once. It is safe for concurrent use.
func NewBuilder(b Builder) *Builder {
	b.names, b.nNames, b.zones = new(sync.Map), new(atomic.Int64), newZoneCache()
	b.json = b.jsonParser()
	return &b
}

// scratch is what one Build works in.
type scratch struct {
	w              ownWriter
	ev             parse.Event
	parsed, merged []field
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// Build makes the document of a record. The id depends only on where the line came
// from: host, file incarnation and byte offset for lines from logagent, or topic,
// partition and Kafka offset for records from other producers. Re-delivery of the same
// record therefore overwrites its document instead of adding one.
//
// A record whose dataset b.Datasets knows is parsed: the parser's fields join the
// document (never over logpipe's own fields), the line's own time becomes @timestamp
// and when the agent read it event.created. A line that does not match is indexed all
// the same, with error.message naming the dataset and what did not match and the tag
// _parsefailure; never dropped.
//
// For a topic in b.JSON, a line that is a JSON object also has its fields in the
// document, under b.JSONTarget (or at the top level, where logpipe's own fields win);
// message keeps the line as it was. A line that is not a JSON object is indexed all
// the same, with error.message saying why and the tag _jsonparsefailure (as Logstash
// does), never dropped.
func (b Builder) Build(m *sarama.ConsumerMessage) Doc {
	meta := record.Read(m.Headers)
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	n := now().UTC()
	ts := m.Timestamp.UTC()
	replaced := false
	if m.Timestamp.IsZero() || ts.Year() < 1971 {
		ts = n
	} else if !b.inBounds(ts, n) {
		ts, replaced = n, true
	}
	var created time.Time // the agent's read time, when the line's time is @timestamp
	if meta.Created != nil {
		if t, err := record.ParseTime(meta.Created); err == nil {
			created = t
		}
	}
	read := created // when the agent read the line
	if read.IsZero() {
		read = ts
	}
	var dataset string
	if meta.Dataset != nil {
		dataset = b.zones.dataset(meta.Dataset)
	}

	sc := scratches.Get().(*scratch)
	defer sc.release()
	ev := &sc.ev
	ev.Reset()
	var parseErr error // the dataset's parser did not match
	var parser parse.Parser
	var zone *time.Location
	var zoneName string
	if dataset != "" && b.Datasets != nil {
		if p, ok := b.Datasets.Lookup(dataset); ok {
			parser = p
			zone, zoneName = b.zone(dataset, meta.Timezone)
			if parseErr = p.Parse(m.Value, parse.Input{Location: zone, Read: read}, ev); parseErr != nil {
				ev.Reset()
			}
		}
	} else if meta.Timezone != nil {
		if loc, name := b.zones.get(meta.Timezone); loc != nil {
			zoneName = name
		}
	}
	isJSON := parser == nil && b.JSON != nil && (b.JSON[m.Topic] || b.JSON["*"])
	var jsonErr error
	if isJSON {
		if jsonErr = b.jsonParser().Parse(m.Value, parse.Input{Location: time.UTC, Read: read}, ev); jsonErr != nil {
			ev.Reset()
		}
	}

	// The line's own time: the parser's, or a JSON line's timestamp field.
	unparsed := false
	lt := ev.Time
	if isJSON && jsonErr == nil && b.TimestampField != "" {
		if raw, ok := jsonField(ev, b.JSONTarget, b.TimestampField); ok {
			if t, err := parseTime(raw, b.TimestampFormat); err == nil {
				lt = t
			} else {
				unparsed = true
			}
		}
	}
	if !lt.IsZero() {
		if lt.Year() >= 1971 && b.inBounds(lt, n) {
			if !replaced && created.IsZero() {
				created = ts
			}
			ts = lt.UTC()
		} else {
			unparsed = true
		}
	}

	// logpipe's own fields, written in the order of the document (cmpField), so that
	// only the parsed ones need sorting.
	w := &sc.w
	w.reset()
	w.date("@timestamp", ts)
	msg := m.Value
	if ev.Message != nil {
		msg = ev.Message
	}
	w.str("message", msg)
	w.opt("container.id", meta.ContainerID)
	w.opt("container.name", meta.Container)
	if dataset != "" {
		w.str("data_stream.dataset", []byte(dataset))
	}
	switch {
	case parseErr != nil:
		w.str("error.message", []byte(dataset+": "+parseErr.Error()))
	case jsonErr != nil:
		w.str("error.message", []byte("json: "+jsonErr.Error()))
	}
	// ECS event: created (the agent's read time) when the line's own time is
	// @timestamp, ingested always.
	if !created.IsZero() {
		w.date("event.created", created)
	}
	if dataset != "" {
		w.str("event.dataset", []byte(dataset))
	}
	w.date("event.ingested", n)
	if zoneName != "" {
		w.str("event.timezone", []byte(zoneName))
	}
	w.opt("host.name", meta.Host)
	w.num("kafka.offset", m.Offset)
	w.num("kafka.partition", int64(m.Partition))
	if replaced {
		w.num("kafka.timestamp", m.Timestamp.UnixMilli())
	}
	w.str("kafka.topic", []byte(m.Topic))
	w.opt("kubernetes.namespace", meta.Namespace)
	w.opt("kubernetes.pod.name", meta.Pod)
	// The entry's fields under labels (ECS's place for them).
	for _, h := range meta.Labels {
		if name := "labels." + string(h.Key[len(record.FieldPrefix):]); validName(name) {
			w.str(name, h.Value)
		}
	}
	w.opt("log.file.path", meta.Path)
	if off, err := record.ParseOffset(meta.Offset); err == nil {
		w.num("log.offset", off)
	} else if meta.Offset != nil && meta.Path == nil {
		w.raw("log.offset", "null")
	}
	if meta.Stream != nil && (meta.Path != nil || meta.Offset != nil) {
		w.str("log.iostream", meta.Stream) // OpenTelemetry's log.iostream
	}
	switch {
	case parseErr != nil:
		w.raw("tags", `["_parsefailure"]`)
	case jsonErr != nil:
		w.raw("tags", `["_jsonparsefailure"]`)
	case len(ev.Tags) > 0:
		w.tags(ev.Tags)
	}
	own := w.fields()
	parsed := sc.parsed[:0]
	for _, f := range ev.Fields {
		if allowed(f.Name) {
			parsed = append(parsed, field{name: f.Name, val: f.Value})
		}
	}
	sc.parsed = parsed
	body := make([]byte, 0, len(m.Value)+len(meta.Host)+len(meta.Path)+len(m.Topic)+256+len(w.vals)+len(m.Value)/2)
	body, sc.merged = appendTree(body, own, parsed, sc.merged[:0])

	return Doc{Index: b.index(m.Topic, dataset, ts), ID: ID(m.Topic, m.Partition, m.Offset, meta.Host, meta.FileID, meta.Offset), Body: body,
		TimestampReplaced: replaced, TimestampUnparsed: unparsed, Dataset: dataset,
		ParseFailed: parseErr != nil, UnknownDataset: dataset != "" && parser == nil}
}

// release returns the scratch space to the pool, unless one document made it large.
func (sc *scratch) release() {
	if cap(sc.w.vals) > 1<<20 {
		sc.w.vals = nil
	}
	sc.ev.Reset()
	scratches.Put(sc)
}

// allowed reports whether a parsed field may be in a document: not one of the fields
// that only logpipe sets (whether or not this document has it), and a name
// Elasticsearch takes.
func allowed(name string) bool {
	switch name {
	case "@timestamp", "message", "host.name", "log.file.path", "log.offset", "log.iostream",
		"event.created", "event.ingested", "event.dataset", "event.timezone", "kafka", "data_stream":
		return false
	}
	return validName(name) && !strings.HasPrefix(name, "kafka.") && !strings.HasPrefix(name, "data_stream.")
}

func (b Builder) inBounds(ts, now time.Time) bool {
	return !(b.MaxFuture > 0 && ts.After(now.Add(b.MaxFuture))) && !(b.MaxAge > 0 && ts.Before(now.Add(-b.MaxAge)))
}

// parseTime reads a timestamp value in format ("" RFC 3339, unix, unix_ms, or a Go
// layout).
func parseTime(raw json.RawMessage, format string) (time.Time, error) {
	switch format {
	case "unix", "unix_ms":
		str := strings.Trim(string(raw), `"`)
		if ms, err := strconv.ParseInt(str, 10, 64); err == nil && format == "unix_ms" && ms >= 0 && ms < 1e14 {
			return time.UnixMilli(ms), nil
		}
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return time.Time{}, err
			}
			if f, err = strconv.ParseFloat(s, 64); err != nil {
				return time.Time{}, err
			}
		}
		if format == "unix_ms" {
			f /= 1000
		}
		if f < 0 || f > 1e11 {
			return time.Time{}, errors.New("out of range")
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).Round(time.Millisecond), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, err
	}
	if len(s) > 64 {
		return time.Time{}, errors.New("too long")
	}
	if format == "" {
		return time.Parse(time.RFC3339Nano, s)
	}
	return time.Parse(format, s)
}

// ID is a record's document id: base64url (no padding) of the first 15 bytes of
// SHA-256 over host, file id and line offset (each separated by a zero byte) when the
// record has those headers, else over "k", topic, partition and Kafka offset.
func ID(topic string, partition int32, kafkaOffset int64, host, fileID, offset []byte) string {
	var buf [256]byte
	in := buf[:0]
	if host != nil && fileID != nil && offset != nil {
		in = append(in, host...)
		in = append(in, 0)
		in = append(in, fileID...)
		in = append(in, 0)
		in = append(in, offset...)
	} else {
		in = append(in, "k\x00"...)
		in = append(in, topic...)
		in = append(in, 0)
		in = strconv.AppendInt(in, int64(partition), 10)
		in = append(in, 0)
		in = strconv.AppendInt(in, kafkaOffset, 10)
	}
	sum := sha256.Sum256(in)
	return base64.RawURLEncoding.EncodeToString(sum[:15])
}

func (b Builder) index(topic, dataset string, ts time.Time) string {
	if b.names == nil || ts.Unix() < 0 {
		return b.indexName(topic, dataset, ts)
	}
	k := indexKey{topic, dataset, ts.Unix() / 86400}
	if name, ok := b.names.Load(k); ok {
		return name.(string)
	}
	name := b.indexName(topic, dataset, ts)
	if b.nNames.Add(1) <= maxNames { // records from many days (no timestamp bound) must not grow it without end
		b.names.Store(k, name)
	}
	return name
}

func (b Builder) indexName(topic, dataset string, ts time.Time) string {
	p := b.IndexPattern
	if p == "" {
		p = "{topic}-{date}"
	}
	if strings.Contains(p, "{date}") {
		p = strings.ReplaceAll(p, "{date}", ts.Format("2006.01.02"))
	}
	if dataset == "" {
		dataset = topic
	}
	return strings.ToLower(strings.NewReplacer("{topic}", topic, "{dataset}", dataset).Replace(p))
}

// jsonParser is the decoder of JSON topics' lines.
func (b Builder) jsonParser() parse.Parser {
	if b.json != nil {
		return b.json
	}
	p, err := parse.Compile(parse.Spec{Parser: "json", Target: b.JSONTarget})
	if err != nil {
		panic("document: the JSON parser does not compile: " + err.Error()) // a constant spec
	}
	return p
}

// jsonField finds a JSON line's field by its dotted path, under target.
func jsonField(ev *parse.Event, target, path string) ([]byte, bool) {
	if target != "" {
		path = target + "." + path
	}
	for _, f := range ev.Fields {
		if f.Name == path {
			return f.Value, true
		}
	}
	return nil, false
}

// appendString appends s as a JSON string.
func appendString(dst, s []byte) []byte { return jsonstr.Append(dst, s) }
