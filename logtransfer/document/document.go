// Package document turns a Kafka record into the Elasticsearch document logpipe
// indexes, with Elastic Common Schema field names and a deterministic id.
package document

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
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
	// TimestampUnparsed: the line has Builder.TimestampField but it could not be used.
	TimestampUnparsed bool
}

// Builder builds documents; IndexPattern may hold {topic} and {date} (yyyy.MM.dd, UTC,
// of @timestamp). Its zero value works; NewBuilder's also remembers index names.
type Builder struct {
	IndexPattern string
	// JSON decodes the lines of these topics ("*": every topic) as JSON objects into
	// the document (see Build).
	JSON map[string]bool
	// JSONTarget is the field the decoded object goes under; "" puts its keys at the
	// top level of the document, beside (never over) logpipe's own fields.
	JSONTarget string
	// MaxFuture and MaxAge bound the record timestamps used as @timestamp: one more
	// than MaxFuture ahead of the clock, or more than MaxAge behind it, is replaced by
	// the time of indexing (and kept in kafka.timestamp), so that a producer's clock
	// or a crafted record cannot create one index per day. Zero: no bound.
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

	names  *sync.Map     // indexKey -> string; nil: computed every time
	nNames *atomic.Int64 // entries in names, at most maxNames
}

// maxNames bounds the index names a builder remembers.
const maxNames = 4096

// indexKey is what an index name depends on.
type indexKey struct {
	topic string
	day   int64 // days since the epoch, UTC
}

// NewBuilder returns a copy of b that computes each index name once per topic and
// day. It is safe for concurrent use.
func NewBuilder(b Builder) *Builder {
	b.names, b.nNames = new(sync.Map), new(atomic.Int64)
	return &b
}

// ownFields are the document's fields that decoded JSON never replaces.
var ownFields = map[string]bool{"@timestamp": true, "message": true, "host": true, "log": true, "kafka": true, "error": true, "tags": true, "event": true}

// Build makes the document of a record. The id depends only on where the line came
// from: host, file incarnation and byte offset for lines from logagent, or topic,
// partition and Kafka offset for records from other producers. Re-delivery of the same
// record therefore overwrites its document instead of adding one.
//
// For a topic in b.JSON, a line that is a JSON object also has its fields in the
// document, under b.JSONTarget (or at the top level, where logpipe's own fields win);
// message keeps the line as it was. A line that is not a JSON object is indexed all
// the same, with error.message saying why and the tag _jsonparsefailure (as Logstash
// does), never dropped.
func (b Builder) Build(m *sarama.ConsumerMessage) Doc {
	var host, path, fileID, offset, stream, readAt []byte
	var meta agentMeta // labels and container names, see appendMeta
	for _, h := range m.Headers {
		switch k := string(h.Key); k {
		case "host":
			host = h.Value
		case "path":
			path = h.Value
		case "file_id":
			fileID = h.Value
		case "offset":
			offset = h.Value
		case "stream":
			stream = h.Value
		case "event.created":
			readAt = h.Value // the agent's read time, when the record's is the container runtime's
		case "kubernetes.pod.name":
			meta.pod = h.Value
		case "kubernetes.namespace":
			meta.ns = h.Value
		case "container.name":
			meta.cname = h.Value
		case "container.id":
			meta.cid = h.Value
		default:
			if strings.HasPrefix(k, "fields.") && len(k) > len("fields.") {
				meta.labels = append(meta.labels, h)
			}
		}
	}
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
	// A JSON line: decoded once, for its timestamp and its fields.
	var fields map[string]json.RawMessage
	var jsonErr error
	isJSON := b.JSON != nil && (b.JSON[m.Topic] || b.JSON["*"])
	if isJSON {
		fields, jsonErr = decodeObject(m.Value)
	}
	var created time.Time // the agent's read time, when the line's time is @timestamp
	if readAt != nil {
		if t, err := time.Parse(time.RFC3339Nano, string(readAt)); err == nil {
			created = t.UTC()
		}
	}
	unparsed := false
	if fields != nil && b.TimestampField != "" {
		if raw, ok := lookup(fields, b.TimestampField); ok {
			if lt, err := parseTime(raw, b.TimestampFormat); err == nil && lt.Year() >= 1971 && b.inBounds(lt, n) {
				if !replaced && created.IsZero() {
					created = ts
				}
				ts = lt.UTC()
			} else {
				unparsed = true
			}
		}
	}
	body := make([]byte, 0, len(m.Value)+len(host)+len(path)+len(m.Topic)+256)
	body = append(body, `{"@timestamp":"`...)
	body = ts.AppendFormat(body, "2006-01-02T15:04:05.000Z07:00")
	body = append(body, `","message":`...)
	body = appendString(body, m.Value)
	if host != nil {
		body = append(body, `,"host":{"name":`...)
		body = appendString(body, host)
		body = append(body, '}')
	}
	if path != nil || offset != nil {
		body = append(body, `,"log":{`...)
		if path != nil {
			body = append(body, `"file":{"path":`...)
			body = appendString(body, path)
			body = append(body, '}')
		}
		if off, err := strconv.ParseInt(string(offset), 10, 64); err == nil {
			if path != nil {
				body = append(body, ',')
			}
			body = append(body, `"offset":`...)
			body = strconv.AppendInt(body, off, 10)
		} else if path == nil {
			body = append(body, `"offset":null`...)
		}
		if stream != nil {
			body = append(body, `,"iostream":`...) // OpenTelemetry's log.iostream
			body = appendString(body, stream)
		}
		body = append(body, '}')
	}
	var added []string // top-level fields from the headers, which decoded JSON does not replace
	if meta.labels != nil || meta.pod != nil || meta.ns != nil || meta.cname != nil || meta.cid != nil {
		body, added = appendMeta(body, meta)
	}
	body = append(body, `,"kafka":{"topic":`...)
	body = appendString(body, []byte(m.Topic))
	body = append(body, `,"partition":`...)
	body = strconv.AppendInt(body, int64(m.Partition), 10)
	body = append(body, `,"offset":`...)
	body = strconv.AppendInt(body, m.Offset, 10)
	if replaced {
		body = append(body, `,"timestamp":`...)
		body = strconv.AppendInt(body, m.Timestamp.UnixMilli(), 10)
	}
	body = append(body, '}')
	// ECS event: created (the agent's read time) when the line's own time is
	// @timestamp, ingested always; at the top level, the line's other event fields
	// join them in the one "event" object.
	body = append(body, `,"event":{`...)
	if !created.IsZero() {
		body = append(body, `"created":"`...)
		body = created.AppendFormat(body, "2006-01-02T15:04:05.000Z07:00")
		body = append(body, `",`...)
	}
	body = append(body, `"ingested":"`...)
	body = n.AppendFormat(body, "2006-01-02T15:04:05.000Z07:00")
	body = append(body, '"')
	if b.JSONTarget == "" && fields != nil {
		var ev map[string]json.RawMessage
		if raw, ok := fields["event"]; ok && json.Unmarshal(raw, &ev) == nil {
			keys := make([]string, 0, len(ev))
			for k := range ev {
				if k != "created" && k != "ingested" {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				body = append(body, ',')
				body = appendString(body, []byte(k))
				body = append(body, ':')
				body = appendCompact(body, ev[k])
			}
		}
	}
	body = append(body, '}')
	if isJSON {
		body = b.appendJSON(body, fields, jsonErr, added)
	}
	body = append(body, '}')

	return Doc{Index: b.index(m.Topic, ts), ID: ID(m.Topic, m.Partition, m.Offset, host, fileID, offset), Body: body,
		TimestampReplaced: replaced, TimestampUnparsed: unparsed}
}

// agentMeta is what the agent's headers tell beyond the line and its file: the
// entry's static fields ("fields.<name>" headers) and a container log's names.
type agentMeta struct {
	labels              []*sarama.RecordHeader
	pod, ns, cname, cid []byte
}

// appendMeta adds what the agent's headers tell beyond the line itself: an entry's
// static fields ("fields.<name>") under labels (ECS's place for them), and the Kubernetes
// pod, namespace and container of a container log.
func appendMeta(body []byte, meta agentMeta) ([]byte, []string) {
	var added []string
	labels, pod, ns, cname, cid := meta.labels, meta.pod, meta.ns, meta.cname, meta.cid
	if len(labels) > 0 {
		// Sorted and without repeats, so that the document is the same however the
		// headers came.
		slices.SortStableFunc(labels, func(a, b *sarama.RecordHeader) int { return bytes.Compare(a.Key, b.Key) })
		added = append(added, "labels")
		body = append(body, `,"labels":{`...)
		for i, h := range labels {
			if i > 0 && bytes.Equal(h.Key, labels[i-1].Key) {
				continue
			}
			if i > 0 {
				body = append(body, ',')
			}
			body = appendString(body, h.Key[len("fields."):])
			body = append(body, ':')
			body = appendString(body, h.Value)
		}
		body = append(body, '}')
	}
	if pod != nil || ns != nil {
		added = append(added, "kubernetes")
		body = append(body, `,"kubernetes":{`...)
		if pod != nil {
			body = append(body, `"pod":{"name":`...)
			body = appendString(body, pod)
			body = append(body, '}')
		}
		if ns != nil {
			if pod != nil {
				body = append(body, ',')
			}
			body = append(body, `"namespace":`...)
			body = appendString(body, ns)
		}
		body = append(body, '}')
	}
	if cname != nil || cid != nil {
		added = append(added, "container")
		body = append(body, `,"container":{`...)
		if cname != nil {
			body = append(body, `"name":`...)
			body = appendString(body, cname)
		}
		if cid != nil {
			if cname != nil {
				body = append(body, ',')
			}
			body = append(body, `"id":`...)
			body = appendString(body, cid)
		}
		body = append(body, '}')
	}
	return body, added
}

func (b Builder) inBounds(ts, now time.Time) bool {
	return !(b.MaxFuture > 0 && ts.After(now.Add(b.MaxFuture))) && !(b.MaxAge > 0 && ts.Before(now.Add(-b.MaxAge)))
}

// decodeObject decodes a line that is a JSON object.
func decodeObject(line []byte) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	trimmed := bytes.TrimSpace(line)
	err := errors.New("not a JSON object")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		err = json.Unmarshal(trimmed, &fields)
	}
	if err != nil {
		return nil, err
	}
	return fields, nil
}

// maxPathDepth bounds a dotted timestamp_field path.
const maxPathDepth = 8

// lookup finds a dotted path in a decoded object: the whole name first ("log.time"
// as one key), then nested objects.
func lookup(fields map[string]json.RawMessage, path string) (json.RawMessage, bool) {
	if v, ok := fields[path]; ok {
		return v, true
	}
	head, rest, found := strings.Cut(path, ".")
	if !found || strings.Count(path, ".") > maxPathDepth {
		return nil, false
	}
	var inner map[string]json.RawMessage
	if v, ok := fields[head]; !ok || json.Unmarshal(v, &inner) != nil {
		return nil, false
	}
	return lookup(inner, rest)
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

// appendJSON adds the fields of a JSON object line, or the reason it is not one.
func (b Builder) appendJSON(body []byte, fields map[string]json.RawMessage, err error, taken []string) []byte {
	if err != nil {
		body = append(body, `,"error":{"message":`...)
		body = appendString(body, []byte("json: "+err.Error()))
		return append(body, `},"tags":["_jsonparsefailure"]`...)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if b.JSONTarget != "" || !ownFields[k] && !slices.Contains(taken, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if b.JSONTarget != "" {
		body = append(body, ',')
		body = appendString(body, []byte(b.JSONTarget))
		body = append(body, ":{"...)
	}
	for i, k := range keys {
		if i > 0 || b.JSONTarget == "" {
			body = append(body, ',')
		}
		body = appendString(body, []byte(k))
		body = append(body, ':')
		body = appendCompact(body, fields[k])
	}
	if b.JSONTarget != "" {
		body = append(body, '}')
	}
	return body
}

// appendCompact appends a JSON value re-encoded without insignificant whitespace:
// JSON allows raw newlines between tokens, and one in a _bulk body would split the
// document into two NDJSON lines (and could pose as an action line). Inside strings a
// newline is always escaped (a raw one is not valid JSON), so the result is one line.
func appendCompact(dst, v []byte) []byte {
	if !utf8.Valid(v) {
		v = bytes.ToValidUTF8(v, []byte("\uFFFD"))
	}
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, v...) // already one line: the common case, copied as is
	}
	n := len(dst)
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, v); err != nil {
		// Unreachable for a value json.Unmarshal accepted; never copy it raw.
		return appendString(dst[:n], v)
	}
	return buf.Bytes()
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

func (b Builder) index(topic string, ts time.Time) string {
	if b.names == nil {
		return b.indexName(topic, ts)
	}
	k := indexKey{topic, ts.Unix() / 86400}
	if ts.Unix() < 0 {
		return b.indexName(topic, ts)
	}
	if name, ok := b.names.Load(k); ok {
		return name.(string)
	}
	name := b.indexName(topic, ts)
	if b.nNames.Add(1) <= maxNames { // records from many days (no timestamp bound) must not grow it without end
		b.names.Store(k, name)
	}
	return name
}

func (b Builder) indexName(topic string, ts time.Time) string {
	p := b.IndexPattern
	if p == "" {
		p = "{topic}-{date}"
	}
	if strings.Contains(p, "{date}") {
		p = strings.ReplaceAll(p, "{date}", ts.Format("2006.01.02"))
	}
	return strings.ToLower(strings.ReplaceAll(p, "{topic}", topic))
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// Elasticsearch requires valid UTF-8.
func appendString(dst, s []byte) []byte {
	if utf8.Valid(s) && !needsEscape(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	enc, _ := json.Marshal(strings.ToValidUTF8(string(s), "\uFFFD"))
	return append(dst, enc...)
}

func needsEscape(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			return true
		}
	}
	return false
}
