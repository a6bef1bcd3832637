package document

import (
	"github.com/logpipe/logpipe/internal/jsonstr"
	"slices"
	"strconv"
	"strings"
	"time"
)

// field is one leaf of a document: its dotted name ("log.file.path") and its value,
// one compact JSON value.
type field struct {
	name string
	val  []byte
	own  bool // set by logpipe: a parsed field never replaces it
	drop bool
}

// rank orders the top-level fields of a document: @timestamp and message first, for
// people reading NDJSON, then every other field by name.
func rank(name string) int {
	switch {
	case name == "@timestamp":
		return 0
	case name == "message":
		return 1
	}
	return 2
}

// cmpField orders fields so that the fields of one object are next to each other:
// by name, with '.' before every other byte, so "a", "a.b", "a.c", "a0".
func cmpField(x, y field) int {
	if rx, ry := rank(x.name), rank(y.name); rx != ry {
		return rx - ry
	}
	return cmpName(x, y)
}

// cmpName is cmpField for fields of the same rank: parsed fields are never
// @timestamp or message.
func cmpName(x, y field) int {
	a, b := x.name, y.name
	for i := 0; i < min(len(a), len(b)); i++ {
		ca, cb := a[i], b[i]
		switch {
		case ca == cb:
			continue
		case ca == '.':
			return -1
		case cb == '.':
			return 1
		}
		return int(ca) - int(cb)
	}
	return len(a) - len(b)
}

// appendTree appends logpipe's own fields and the parsed ones as one JSON object, the
// dotted names nested, and returns buf, where it merged them. parsed is sorted in
// place; own is expected in order already. Where two fields cannot both be in the
// document, one is left out: of two with one name, logpipe's own, else the first
// parsed; of a value and an object of the same name ("http" and "http.version"),
// logpipe's own, else the value.
func appendTree(dst []byte, own, parsed, buf []field) ([]byte, []field) {
	if !slices.IsSortedFunc(own, cmpField) {
		slices.SortStableFunc(own, cmpField) // labels from another producer, out of order
	}
	if !slices.IsSortedFunc(parsed, cmpName) {
		slices.SortStableFunc(parsed, cmpName)
	}
	fs := buf[:0]
	for i, j := 0, 0; i < len(own) || j < len(parsed); {
		if j == len(parsed) || i < len(own) && cmpField(own[i], parsed[j]) <= 0 {
			fs = append(fs, own[i])
			i++
		} else {
			fs = append(fs, parsed[j])
			j++
		}
	}
	for i := range fs {
		if fs[i].drop {
			continue
		}
		j := i + 1
		for ; j < len(fs) && fs[j].name == fs[i].name; j++ {
			fs[j].drop = true
		}
		name := fs[i].name
		k, ownBelow := j, false
		for ; k < len(fs) && len(fs[k].name) > len(name) && fs[k].name[len(name)] == '.' && strings.HasPrefix(fs[k].name, name); k++ {
			ownBelow = ownBelow || fs[k].own
		}
		if ownBelow && !fs[i].own {
			fs[i].drop = true // the object wins; its fields are looked at in turn
			continue
		}
		for m := j; m < k; m++ {
			fs[m].drop = true
		}
	}
	var openBuf [maxDepth]string
	open := openBuf[:0] // the objects the last field written is in
	dst = append(dst, '{')
	first := true
	for _, f := range fs {
		if f.drop {
			continue
		}
		rest, same := f.name, 0
		for same < len(open) {
			i := strings.IndexByte(rest, '.')
			if i < 0 || rest[:i] != open[same] {
				break
			}
			rest, same = rest[i+1:], same+1
		}
		for ; len(open) > same; open = open[:len(open)-1] {
			dst = append(dst, '}')
			first = false
		}
		for len(open) < maxDepth-1 {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			if !first {
				dst = append(dst, ',')
			}
			dst = jsonstr.AppendKey(dst, rest[:i])
			dst = append(dst, '{')
			open, rest, first = append(open, rest[:i]), rest[i+1:], true
		}
		if !first {
			dst = append(dst, ',')
		}
		dst = jsonstr.AppendKey(dst, rest)
		dst = append(dst, f.val...)
		first = false
	}
	for range open {
		dst = append(dst, '}')
	}
	return append(dst, '}'), fs
}

// maxDepth bounds how deep a document's objects nest; parts of a name past it stay
// in one key.
const maxDepth = 16

// validName reports whether a parsed field's name can be a document field: dotted
// parts that are not empty.
func validName(name string) bool {
	return name != "" && name[0] != '.' && name[len(name)-1] != '.' && !strings.Contains(name, "..")
}

// ownWriter gathers logpipe's own fields of a document, their values written one
// after the other into one buffer.
type ownWriter struct {
	fs     []field
	vals   []byte
	starts []int // where each field's value starts in vals
}

func (w *ownWriter) reset() { w.fs, w.vals, w.starts = w.fs[:0], w.vals[:0], w.starts[:0] }

func (w *ownWriter) begin(name string) {
	w.fs = append(w.fs, field{name: name, own: true})
	w.starts = append(w.starts, len(w.vals))
}

func (w *ownWriter) str(name string, v []byte) {
	w.begin(name)
	w.vals = appendString(w.vals, v)
}

// opt writes a string field when v is not nil.
func (w *ownWriter) opt(name string, v []byte) {
	if v != nil {
		w.str(name, v)
	}
}

func (w *ownWriter) num(name string, v int64) {
	w.begin(name)
	w.vals = strconv.AppendInt(w.vals, v, 10)
}

func (w *ownWriter) raw(name, v string) {
	w.begin(name)
	w.vals = append(w.vals, v...)
}

// date writes t in UTC with milliseconds, as Elasticsearch's date type reads it.
func (w *ownWriter) date(name string, t time.Time) {
	w.begin(name)
	w.vals = appendDate(w.vals, t)
}

// appendDate appends t as a JSON string in UTC with milliseconds:
// "2006-01-02T15:04:05.000Z" (what t.UTC().AppendFormat writes for that layout, for
// years 0 to 9999, without parsing the layout each time).
func appendDate(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		return append(dst, '"')
	}
	hour, min, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	d := func(n, width int) {
		for i := width - 1; i >= 0; i-- {
			dst = append(dst, 0)
		}
		for i := len(dst) - 1; width > 0; i, width = i-1, width-1 {
			dst[i] = byte('0' + n%10)
			n /= 10
		}
	}
	dst = append(dst, '"')
	d(year, 4)
	dst = append(dst, '-')
	d(int(month), 2)
	dst = append(dst, '-')
	d(day, 2)
	dst = append(dst, 'T')
	d(hour, 2)
	dst = append(dst, ':')
	d(min, 2)
	dst = append(dst, ':')
	d(sec, 2)
	dst = append(dst, '.')
	d(ms, 3)
	return append(dst, 'Z', '"')
}

func (w *ownWriter) tags(tags []string) {
	w.begin("tags")
	w.vals = append(w.vals, '[')
	for i, t := range tags {
		if i > 0 {
			w.vals = append(w.vals, ',')
		}
		w.vals = appendString(w.vals, []byte(t))
	}
	w.vals = append(w.vals, ']')
}

// fields returns the fields written, their values set.
func (w *ownWriter) fields() []field {
	for i := range w.fs {
		end := len(w.vals)
		if i+1 < len(w.starts) {
			end = w.starts[i+1]
		}
		w.fs[i].val = w.vals[w.starts[i]:end:end]
	}
	return w.fs
}
