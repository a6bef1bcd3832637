package parse

import (
	"bytes"
	"encoding/json"
	"github.com/logpipe/logpipe/internal/jsonstr"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxFields is the most fields an Event holds; later ones are ignored (and the
// event tagged TagFieldDropped).
const MaxFields = 256

// MaxValueBytes bounds a field's value: a string value longer than this (in
// bytes, decoded) is cut at a character boundary and the event tagged
// TagFieldTruncated; a raw JSON value (an object or array) whose text is longer
// is left out and the event tagged TagFieldDropped.
const MaxValueBytes = 32 << 10

// maxNameBytes bounds a field name.
const maxNameBytes = 512

// The tags a parser puts on an event.
const (
	// TagFieldTruncated: a value was longer than MaxValueBytes and was cut.
	TagFieldTruncated = "_field_truncated"
	// TagFieldDropped: a field was left out: past MaxFields, a raw value over
	// MaxValueBytes, a name that is not a valid field name, or a name that
	// conflicts with another field's (a leaf "a" beside an object "a.b").
	TagFieldDropped = "_field_dropped"
)

// Field is one parsed field: a dotted ECS name and its value as one compact,
// valid JSON value (string, number, boolean, object, array) on one line.
type Field struct {
	Name  string
	Value []byte
}

// Event is what a parser found in one line. An Event is reused across lines:
// Reset it before each; its values live in an arena the Event owns, so a Field's
// Value is valid until the next Reset.
type Event struct {
	// Fields are the parsed fields in the order added; a name appears at most once.
	Fields []Field
	// Time is the log's own time; zero: the line has none.
	Time time.Time
	// Message is nil when the document's message stays the whole line (access
	// logs); else it is the text after the header (error and syslog lines), which
	// may be empty.
	Message []byte
	// Tags are set by the parser for things it did to the fields, e.g.
	// TagFieldTruncated.
	Tags []string

	arena   []byte // the JSON values of Fields
	scratch []byte // unescaped text on its way into the arena
}

// maxKeptArena is the most arena an Event keeps across Reset.
const maxKeptArena = 256 << 10

// Reset empties the event for the next line, keeping its memory.
func (e *Event) Reset() {
	clear(e.Fields) // drop references into old arenas
	e.Fields = e.Fields[:0]
	e.Time = time.Time{}
	e.Message = nil
	e.Tags = e.Tags[:0]
	if cap(e.arena) > maxKeptArena {
		e.arena = nil
	}
	e.arena = e.arena[:0]
	if cap(e.scratch) > maxKeptArena {
		e.scratch = nil
	}
	e.scratch = e.scratch[:0]
}

// Get returns the value of the field name, or nil.
func (e *Event) Get(name string) []byte {
	for i := range e.Fields {
		if e.Fields[i].Name == name {
			return e.Fields[i].Value
		}
	}
	return nil
}

// tag adds t once.
func (e *Event) tag(t string) {
	for _, have := range e.Tags {
		if have == t {
			return
		}
	}
	e.Tags = append(e.Tags, t)
}

// AddString adds a string field: v is JSON-encoded (invalid UTF-8 becomes
// U+FFFD, control characters are escaped so the value has no raw newline), cut
// to MaxValueBytes (tagging TagFieldTruncated). A name already present gets the
// new value; a field past MaxFields, or one whose name is invalid or conflicts
// with another's, is ignored (tagging TagFieldDropped).
func (e *Event) AddString(name string, v []byte) {
	i, ok := e.slot(name)
	if !ok {
		return
	}
	e.put(i, name, e.encString(v))
}

// AddInt adds a number field (see AddString for names).
func (e *Event) AddInt(name string, n int64) {
	i, ok := e.slot(name)
	if !ok {
		return
	}
	e.put(i, name, e.encInt(n))
}

// AddRaw adds a field whose value is already valid JSON; a raw newline or
// carriage return in it is compacted away. A value over MaxValueBytes is left out
// (tagging TagFieldDropped), since a cut object or array would not be JSON.
func (e *Event) AddRaw(name string, raw []byte) {
	i, ok := e.slot(name)
	if !ok {
		return
	}
	v, ok := e.encRaw(raw)
	if !ok {
		return
	}
	e.put(i, name, v)
}

// slot checks a name for the exported Add methods: the index of the field to
// replace, or -1 to append; false: leave the field out.
func (e *Event) slot(name string) (int, bool) {
	if !validName(name) {
		e.tag(TagFieldDropped)
		return 0, false
	}
	for i := range e.Fields {
		have := e.Fields[i].Name
		if have == name {
			return i, true
		}
		if conflicts(have, name) {
			e.tag(TagFieldDropped)
			return 0, false
		}
	}
	if len(e.Fields) >= MaxFields {
		e.tag(TagFieldDropped)
		return 0, false
	}
	return -1, true
}

// conflicts says whether one name is an object that holds the other ("a" and
// "a.b"): Elasticsearch cannot map both.
func conflicts(a, b string) bool {
	if len(a) == len(b) {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return b[len(a)] == '.' && b[:len(a)] == a
}

// validName: a non-empty dotted name of valid UTF-8, at most maxNameBytes, with
// no empty part and no control character.
func validName(name string) bool {
	if name == "" || len(name) > maxNameBytes || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return false
		}
	}
	return utf8.ValidString(name)
}

// put stores a value at slot i (-1: append).
func (e *Event) put(i int, name string, v []byte) {
	if i >= 0 {
		e.Fields[i].Value = v
		return
	}
	e.Fields = append(e.Fields, Field{Name: name, Value: v})
}

// str adds a string field whose name the parser knows is new and valid.
func (e *Event) str(name string, v []byte) {
	if len(e.Fields) >= MaxFields {
		e.tag(TagFieldDropped)
		return
	}
	e.Fields = append(e.Fields, Field{Name: name, Value: e.encString(v)})
}

// num adds a number field whose name the parser knows is new and valid.
func (e *Event) num(name string, n int64) {
	if len(e.Fields) >= MaxFields {
		e.tag(TagFieldDropped)
		return
	}
	e.Fields = append(e.Fields, Field{Name: name, Value: e.encInt(n)})
}

func (e *Event) encString(v []byte) []byte {
	start := len(e.arena)
	var cut bool
	e.arena, cut = jsonstr.AppendLimit(e.arena, v, MaxValueBytes)
	if cut {
		e.tag(TagFieldTruncated)
	}
	return e.arena[start:len(e.arena):len(e.arena)]
}

func (e *Event) encInt(n int64) []byte {
	start := len(e.arena)
	e.arena = strconv.AppendInt(e.arena, n, 10)
	return e.arena[start:len(e.arena):len(e.arena)]
}

func (e *Event) encRaw(v []byte) ([]byte, bool) {
	if len(v) > MaxValueBytes {
		e.tag(TagFieldDropped)
		return nil, false
	}
	start := len(e.arena)
	if bytes.IndexByte(v, '\n') >= 0 || bytes.IndexByte(v, '\r') >= 0 {
		buf := bytes.NewBuffer(e.arena)
		if json.Compact(buf, v) != nil {
			e.tag(TagFieldDropped)
			return nil, false
		}
		e.arena = buf.Bytes()
	} else {
		e.arena = append(e.arena, v...)
	}
	return e.arena[start:len(e.arena):len(e.arena)], true
}

// unescaped returns v with the backslash escapes \" and \\ undone (others kept
// as written), in the event's scratch space.
func (e *Event) unescaped(v []byte) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v
	}
	s := e.scratch[:0]
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
			i++
			c = v[i]
		}
		s = append(s, c)
	}
	e.scratch = s
	return s
}
