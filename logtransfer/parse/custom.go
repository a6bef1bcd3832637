package parse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/logpipe/logpipe/internal/record"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Spec is a custom dataset as configured in logtransfer.ini.
type Spec struct {
	// Parser is regex, dissect, logfmt or json.
	Parser string
	// Pattern is, for regex, an RE2 expression whose named groups name the
	// fields, dotted ("(?P<http.response.status_code>\d+)"; "(?<name>…)" too), and
	// for dissect a %{field} pattern. A group or dissect field named "message"
	// sets Event.Message instead of a field.
	Pattern string
	// TimeField is the field that holds the event's time ("": none). The field
	// stays among the fields; its value also sets Event.Time. For json and logfmt
	// it is the field's name as produced (with Target), or its name under Target.
	TimeField string
	// TimeLayout is how TimeField is written: a Go layout, or rfc3339 (also ""),
	// unix (seconds, a fraction allowed), unix_ms, or httpdate
	// (02/Jan/2006:15:04:05 -0700).
	TimeLayout string
	// Timezone is the dataset's zone (IANA name or ±hh:mm; "" none): see Set.Zone.
	// A parser reads times without a zone in Input.Location.
	Timezone string
	// Types converts fields (and maps them): long, double, boolean, ip (validated)
	// or keyword. Known ECS fields (those of the built-ins: source.ip is ip,
	// http.response.status_code long, ...) have their type by default, the others
	// are strings (keyword). A value that does not convert fails the line.
	Types map[string]string
	// Target puts the fields of json and logfmt under this dotted prefix ("" top
	// level).
	Target string
}

// MaxPatternBytes bounds a custom pattern.
const MaxPatternBytes = 4 << 10

// maxJSONDepth is the deepest object nesting a json dataset flattens.
const maxJSONDepth = 8

type kind uint8

const (
	kString kind = iota
	kKeyword
	kLong
	kDouble
	kBool
	kIP
)

var kinds = map[string]kind{tKeyword: kKeyword, tLong: kLong, tDouble: kDouble, tBoolean: kBool, tIP: kIP}

var kindTypes = [...]string{kString: tKeyword, kKeyword: tKeyword, kLong: tLong, kDouble: tDouble, kBool: tBoolean, kIP: tIP}

// custom is a compiled Spec.
type custom struct {
	spec   Spec
	re     *regexp.Regexp
	groups []string // regex: the field of each submatch ("" none)
	dis    []dissectField
	prefix string // dissect: the literal before the first field
	fields []string
	kinds  map[string]kind
	// time
	timeField, timeAlt string
	names              interner
}

type dissectField struct {
	name  string // "" skip
	delim string // the literal after the field; "" for the last field
	pad   bool   // "->": skip repeats of delim
}

// Compile checks a custom dataset's spec and compiles it once.
func Compile(s Spec) (Parser, error) {
	c := &custom{spec: s, kinds: make(map[string]kind)}
	if len(s.Pattern) > MaxPatternBytes {
		return nil, fmt.Errorf("pattern: longer than %d bytes", MaxPatternBytes)
	}
	switch s.Parser {
	case "regex":
		if err := c.compileRegex(); err != nil {
			return nil, err
		}
	case "dissect":
		if err := c.compileDissect(); err != nil {
			return nil, err
		}
	case "logfmt", "json":
		if s.Pattern != "" {
			return nil, fmt.Errorf("pattern: only for the regex and dissect parsers, not %s", s.Parser)
		}
	case "":
		return nil, errors.New("parser: missing (regex, dissect, logfmt or json)")
	default:
		return nil, fmt.Errorf("parser: %q is not regex, dissect, logfmt or json", s.Parser)
	}
	fixed := s.Parser == "regex" || s.Parser == "dissect"
	if s.Target != "" {
		if fixed {
			return nil, fmt.Errorf("target: only for the json and logfmt parsers, not %s", s.Parser)
		}
		if !validName(s.Target) {
			return nil, fmt.Errorf("target: %q is not a dotted field name", s.Target)
		}
	}
	for name, t := range s.Types {
		k, ok := kinds[t]
		if !ok {
			return nil, fmt.Errorf("types: %s: %q is not long, double, boolean, ip or keyword", name, t)
		}
		if !validName(name) {
			return nil, fmt.Errorf("types: %q is not a dotted field name", name)
		}
		if fixed && !c.hasField(name) {
			return nil, fmt.Errorf("types: %s is not a field of the pattern", name)
		}
		c.kinds[name] = k
	}
	if s.TimeField != "" {
		if !validName(s.TimeField) {
			return nil, fmt.Errorf("time field: %q is not a dotted field name", s.TimeField)
		}
		if fixed && !c.hasField(s.TimeField) {
			return nil, fmt.Errorf("time field: %s is not a field of the pattern", s.TimeField)
		}
		c.timeField = s.TimeField
		if s.Target != "" {
			c.timeAlt = s.Target + "." + s.TimeField
		}
		if err := checkLayout(s.TimeLayout); err != nil {
			return nil, err
		}
	} else if s.TimeLayout != "" {
		return nil, errors.New("time layout: set without a time field")
	}
	if s.Timezone != "" {
		if _, err := record.ParseZone(s.Timezone); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *custom) hasField(name string) bool {
	for _, f := range c.fields {
		if f == name {
			return true
		}
	}
	return false
}

// checkLayout accepts the named layouts and Go layouts that hold a date or time.
func checkLayout(layout string) error {
	switch layout {
	case "", "rfc3339", "unix", "unix_ms", "httpdate":
		return nil
	}
	if len(layout) > 64 {
		return errors.New("time layout: longer than 64 bytes")
	}
	ref := time.Date(2011, 11, 12, 13, 14, 15, 0, time.UTC)
	s := ref.Format(layout)
	if s == layout {
		return fmt.Errorf("time layout: %q has no element of a Go layout (2006 01 02 15 04 05 ...)", layout)
	}
	if _, err := time.Parse(layout, s); err != nil {
		return fmt.Errorf("time layout: %q cannot be read back: %v", layout, err)
	}
	return nil
}

// fieldTypes is what the dataset can produce, for the mappings: every field of a
// regex or dissect pattern, and the fields json and logfmt ones name in Types.
func (c *custom) fieldTypes() map[string]string {
	m := make(map[string]string)
	for _, f := range c.fields {
		m[f] = kindTypes[c.kind(f)]
	}
	for f := range c.kinds {
		m[f] = kindTypes[c.kind(f)]
	}
	return m
}

func (c *custom) kind(name string) kind {
	if k, ok := c.kinds[name]; ok {
		return k
	}
	switch ecsTypes[name] {
	case tLong:
		return kLong
	case tIP:
		return kIP
	}
	return kString
}

// rewriteGroups renames the named groups of a regex (whose names may hold dots,
// which Go's do not allow) to g0, g1, ...: the new pattern and the names.
func rewriteGroups(p string) (string, []string, error) {
	var b strings.Builder
	var names []string
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if strings.HasPrefix(p[i:], `\Q`) { // quoted text up to \E
				end := strings.Index(p[i+2:], `\E`)
				if end < 0 {
					b.WriteString(p[i:])
					return b.String(), names, nil
				}
				b.WriteString(p[i : i+2+end+2])
				i += 2 + end + 1
				continue
			}
			b.WriteByte(c)
			if i+1 < len(p) {
				i++
				b.WriteByte(p[i])
			}
			continue
		case inClass:
			if c == '[' && i+1 < len(p) && p[i+1] == ':' { // [:alpha:]
				if end := strings.Index(p[i:], ":]"); end > 0 {
					b.WriteString(p[i : i+end+2])
					i += end + 1
					continue
				}
			}
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(p) && p[i+1] == ']' { // a literal ']' first in a class
				i++
				b.WriteByte(']')
			}
			continue
		case c == '(' && (strings.HasPrefix(p[i:], "(?P<") || strings.HasPrefix(p[i:], "(?<")):
			start := i + len("(?<")
			if p[i+2] == 'P' {
				start++
			}
			end := strings.IndexByte(p[start:], '>')
			if end < 0 {
				return "", nil, fmt.Errorf("pattern: group name at byte %d has no '>'", i)
			}
			name := p[start : start+end]
			if !validName(name) {
				return "", nil, fmt.Errorf("pattern: group name %q is not a dotted field name", name)
			}
			for _, have := range names {
				if have == name {
					return "", nil, fmt.Errorf("pattern: group name %s appears twice", name)
				}
			}
			b.WriteString("(?P<g" + strconv.Itoa(len(names)) + ">")
			names = append(names, name)
			i = start + end
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), names, nil
}

func (c *custom) compileRegex() error {
	if c.spec.Pattern == "" {
		return errors.New("pattern: missing")
	}
	p, names, err := rewriteGroups(c.spec.Pattern)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return errors.New("pattern: no named group (?P<field.name>...) to make a field of")
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return fmt.Errorf("pattern: %v", err)
	}
	sub := re.SubexpNames()
	c.groups = make([]string, len(sub))
	n := 0
	for i, s := range sub {
		if s == "" {
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(s, "g"))
		if err != nil || s[0] != 'g' || k >= len(names) {
			return errors.New("pattern: its group names could not be read")
		}
		c.groups[i] = names[k]
		n++
	}
	if n != len(names) {
		return errors.New("pattern: its group names could not be read")
	}
	c.re = re
	for _, name := range names {
		if name != "message" {
			c.fields = append(c.fields, name)
		}
	}
	return nil
}

func (c *custom) compileDissect() error {
	p := c.spec.Pattern
	if p == "" {
		return errors.New("pattern: missing")
	}
	first := strings.Index(p, "%{")
	if first < 0 {
		return errors.New("pattern: no %{field}")
	}
	c.prefix = p[:first]
	rest := p[first:]
	seen := map[string]bool{}
	for len(rest) > 0 {
		// rest starts with "%{"
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return fmt.Errorf("pattern: %q has no '}'", rest)
		}
		key := rest[2:end]
		rest = rest[end+1:]
		var f dissectField
		if strings.HasSuffix(key, "->") {
			f.pad, key = true, strings.TrimSuffix(key, "->")
		}
		switch {
		case key == "" || key[0] == '?':
		case strings.ContainsAny(key[:1], "+*&") || strings.Contains(key, "/"):
			return fmt.Errorf("pattern: %%{%s}: append (+), reference (* &) and ordinal (/n) keys are not supported", key)
		case strings.ContainsAny(key, "%{"):
			return fmt.Errorf("pattern: %%{%s}: '%%' or '{' in a field name", key)
		case !validName(key):
			return fmt.Errorf("pattern: %%{%s}: not a dotted field name", key)
		case seen[key]:
			return fmt.Errorf("pattern: %%{%s} appears twice", key)
		default:
			seen[key] = true
			f.name = key
		}
		next := strings.Index(rest, "%{")
		if next == 0 {
			return fmt.Errorf("pattern: no delimiter between %%{%s} and the next field", key)
		}
		if next < 0 {
			f.delim, rest = rest, ""
		} else {
			f.delim, rest = rest[:next], rest[next:]
		}
		if f.pad && f.delim == "" {
			return fmt.Errorf("pattern: %%{%s->} has no delimiter after it to skip", key)
		}
		c.dis = append(c.dis, f)
	}
	for _, f := range c.dis {
		if f.name != "" && f.name != "message" {
			c.fields = append(c.fields, f.name)
		}
	}
	if len(seen) == 0 {
		return errors.New("pattern: every field is skipped")
	}
	return nil
}

// Parse parses a line with the compiled spec.
func (c *custom) Parse(line []byte, in Input, ev *Event) error {
	line = trimEOL(line)
	var err error
	switch c.spec.Parser {
	case "regex":
		err = c.parseRegex(line, ev)
	case "dissect":
		err = c.parseDissect(line, ev)
	case "logfmt":
		err = c.parseLogfmt(line, ev)
	default:
		err = c.parseJSON(line, ev)
	}
	if err != nil || c.timeField == "" {
		return err
	}
	v := ev.Get(c.timeField)
	if v == nil && c.timeAlt != "" {
		v = ev.Get(c.timeAlt)
	}
	if v == nil {
		return nil
	}
	if len(v) > 0 && v[0] == '"' {
		v = jsonUnquote(ev.scratch[:0], v[1:len(v)-1])
		ev.scratch = v
	}
	t, err := parseLayout(c.spec.TimeLayout, v, in.zone())
	if err != nil {
		return fmt.Errorf("time field %s: %q %v", c.timeField, clip(v), err)
	}
	ev.Time = t
	return nil
}

func clip(v []byte) string {
	if len(v) > 64 {
		v = v[:64]
	}
	return string(v)
}

// addText adds a field found as text, converted to its kind; "message" sets
// ev.Message.
func (c *custom) addText(ev *Event, name string, v []byte) error {
	if name == "message" && c.spec.Parser != "logfmt" {
		if ev.Message == nil {
			ev.Message = v[:len(v):len(v)]
		}
		return nil
	}
	switch c.kind(name) {
	case kLong:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("field %s: %q is not a long", name, clip(v))
		}
		ev.AddInt(name, n)
	case kDouble:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("field %s: %q is not a double", name, clip(v))
		}
		ev.AddRaw(name, strconv.AppendFloat(ev.scratch[:0], f, 'g', -1, 64))
	case kBool:
		b, err := strconv.ParseBool(string(v))
		if err != nil {
			return fmt.Errorf("field %s: %q is not a boolean", name, clip(v))
		}
		ev.AddRaw(name, strconv.AppendBool(ev.scratch[:0], b))
	case kIP:
		if !isIP(v) {
			return fmt.Errorf("field %s: %q is not an IP address", name, clip(v))
		}
		ev.AddString(name, v)
	default:
		ev.AddString(name, v)
	}
	return nil
}

func (c *custom) parseRegex(line []byte, ev *Event) error {
	m := c.re.FindSubmatchIndex(line)
	if m == nil {
		return errNoMatch
	}
	for i, name := range c.groups {
		if name == "" || m[2*i] < 0 || m[2*i] == m[2*i+1] {
			continue
		}
		if err := c.addText(ev, name, line[m[2*i]:m[2*i+1]]); err != nil {
			return err
		}
	}
	return nil
}

func (c *custom) parseDissect(line []byte, ev *Event) error {
	if !bytes.HasPrefix(line, []byte(c.prefix)) {
		return errAt(fmt.Sprintf("expected %q", c.prefix), 0)
	}
	pos := len(c.prefix)
	for i, f := range c.dis {
		var v []byte
		switch {
		case f.delim == "":
			v, pos = line[pos:], len(line)
		case i == len(c.dis)-1: // a trailing literal ends the line
			if !bytes.HasSuffix(line[pos:], []byte(f.delim)) {
				return errAt(fmt.Sprintf("expected the line to end with %q", f.delim), len(line))
			}
			v, pos = line[pos:len(line)-len(f.delim)], len(line)
		default:
			j := bytes.Index(line[pos:], []byte(f.delim))
			if j < 0 {
				return errAt(fmt.Sprintf("expected %q", f.delim), pos)
			}
			v, pos = line[pos:pos+j], pos+j+len(f.delim)
			if f.pad {
				for bytes.HasPrefix(line[pos:], []byte(f.delim)) {
					pos += len(f.delim)
				}
			}
		}
		if f.name != "" && len(v) > 0 {
			if err := c.addText(ev, f.name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseLogfmt reads key=value pairs: values bare or quoted ("a \"b\""), a key
// alone is "true". Tokens that are not a key (a stray '=' or '"') are skipped.
func (c *custom) parseLogfmt(line []byte, ev *Event) error {
	pairs := 0
	for pos := 0; pos < len(line); {
		for pos < len(line) && (line[pos] == ' ' || line[pos] == '\t') {
			pos++
		}
		ks := pos
		for pos < len(line) && line[pos] > ' ' && line[pos] != '=' && line[pos] != '"' {
			pos++
		}
		key := line[ks:pos]
		var v []byte
		if pos < len(line) && line[pos] == '=' {
			pos++
			if pos < len(line) && line[pos] == '"' {
				end, esc, ok := quoted(line, pos+1)
				if !ok {
					return errAt("expected '\"' to end the quoted value", len(line))
				}
				v = line[pos+1 : end]
				if esc {
					v = logfmtUnquote(ev, v)
				}
				pos = end + 1
			} else {
				vs := pos
				for pos < len(line) && line[pos] != ' ' && line[pos] != '\t' {
					pos++
				}
				v = line[vs:pos]
			}
			pairs++
		} else if len(key) > 0 {
			v = []byte("true")
		}
		if len(key) == 0 {
			for pos < len(line) && line[pos] != ' ' && line[pos] != '\t' { // a stray token
				pos++
			}
			continue
		}
		name := c.names.name(c.spec.Target, key)
		if name == "" || len(v) == 0 {
			continue
		}
		if err := c.addText(ev, name, v); err != nil {
			return err
		}
	}
	if pairs == 0 {
		return errAt("expected key=value", 0)
	}
	return nil
}

// logfmtUnquote undoes the escapes of a quoted logfmt value: \" \\ \n \r \t
// (others are kept as written).
func logfmtUnquote(ev *Event, v []byte) []byte {
	s := ev.scratch[:0]
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case '"', '\\':
				c = v[i+1]
				i++
			case 'n':
				c = '\n'
				i++
			case 'r':
				c = '\r'
				i++
			case 't':
				c = '\t'
				i++
			}
		}
		s = append(s, c)
	}
	ev.scratch = s
	return s
}

// interner keeps the names of json and logfmt fields, so that a line's fields
// do not each allocate one; at most maxInterned names.
type interner struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxInterned = 4096

// name is prefix.key (key alone when prefix is ""); "" when that is not a valid
// field name.
func (in *interner) name(prefix string, key []byte) string {
	var buf [128]byte
	b := buf[:0]
	if prefix != "" {
		b = append(append(b, prefix...), '.')
	}
	b = append(b, key...)
	in.mu.RLock()
	s, ok := in.m[string(b)]
	in.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	if !validName(s) {
		return ""
	}
	in.mu.Lock()
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	in.mu.Unlock()
	return s
}

// parseJSON reads a JSON object line: nested objects are flattened into dotted
// fields (to maxJSONDepth); deeper objects and arrays are kept as compact JSON
// values; null gives no field.
func (c *custom) parseJSON(line []byte, ev *Event) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return errAt("expected a JSON object", 0)
	}
	if !json.Valid(line) {
		var v struct{}
		err := json.Unmarshal(line, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return errAt("expected valid JSON: "+se.Error(), int(se.Offset))
		}
		return errAt("expected valid JSON", 0)
	}
	_, err := c.object(line, 0, c.spec.Target, 1, ev)
	return err
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index after the closing quote of the JSON string at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd is the end of the (valid) JSON value at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

// object flattens the object at line[pos] under prefix: the end.
func (c *custom) object(line []byte, pos int, prefix string, depth int, ev *Event) (int, error) {
	pos = skipWS(line, pos+1)
	if line[pos] == '}' {
		return pos + 1, nil
	}
	for {
		ke := stringEnd(line, pos)
		key := line[pos+1 : ke-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key = jsonUnquote(ev.scratch[:0], key)
			ev.scratch = key
		}
		name := c.names.name(prefix, key)
		pos = skipWS(line, skipWS(line, ke)+1) // past ':'
		ve := valueEnd(line, pos)
		v := line[pos:ve]
		var err error
		switch {
		case name == "":
			ev.tag(TagFieldDropped)
		case v[0] == '{' && depth < maxJSONDepth:
			if _, err = c.object(line, pos, name, depth+1, ev); err != nil {
				return 0, err
			}
		case v[0] == 'n': // null
		default:
			err = c.addJSON(ev, name, v)
		}
		if err != nil {
			return 0, err
		}
		pos = skipWS(line, ve)
		if line[pos] == '}' {
			return pos + 1, nil
		}
		pos = skipWS(line, pos+1) // past ','
	}
}

// addJSON adds a JSON value (not null, not a flattened object), converted to
// the field's kind.
func (c *custom) addJSON(ev *Event, name string, v []byte) error {
	k := c.kind(name)
	if v[0] == '"' {
		s := jsonUnquote(ev.scratch[:0], v[1:len(v)-1])
		ev.scratch = s
		if k == kString || k == kKeyword {
			ev.AddString(name, s)
			return nil
		}
		return c.addText(ev, name, s)
	}
	switch k {
	case kString:
		if v[0] == '{' || v[0] == '[' {
			v = compact(ev, v)
		}
		ev.AddRaw(name, v)
		return nil
	case kKeyword:
		if v[0] == '{' || v[0] == '[' {
			return fmt.Errorf("field %s: an object or array is not a keyword", name)
		}
		ev.AddString(name, v)
		return nil
	case kLong:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				ev.AddInt(name, n)
			} else {
				ev.AddInt(name, int64(f))
			}
			return nil
		}
		return fmt.Errorf("field %s: %s is not a long", name, clip(v))
	case kDouble:
		if _, err := strconv.ParseFloat(string(v), 64); err == nil {
			ev.AddRaw(name, v)
			return nil
		}
		return fmt.Errorf("field %s: %s is not a double", name, clip(v))
	case kBool:
		if string(v) == "true" || string(v) == "false" {
			ev.AddRaw(name, v)
			return nil
		}
		return fmt.Errorf("field %s: %s is not a boolean", name, clip(v))
	}
	return fmt.Errorf("field %s: %s is not an IP address", name, clip(v))
}

// compact copies a valid JSON value without insignificant whitespace and with
// invalid UTF-8 replaced, into ev's scratch space.
func compact(ev *Event, v []byte) []byte {
	s := ev.scratch[:0]
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			e := stringEnd(v, i)
			s = append(s, v[i:e]...)
			i = e - 1
		default:
			s = append(s, c)
		}
	}
	if !utf8.Valid(s) {
		s = bytes.ToValidUTF8(s, []byte("\uFFFD"))
	}
	ev.scratch = s
	return s
}

// jsonUnquote appends the text of a valid JSON string's content (between the
// quotes) to dst; a lone surrogate becomes U+FFFD.
func jsonUnquote(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s, i+1)
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2 := hex4(s, i+3); r2 >= 0xdc00 && r2 < 0xe000 {
					r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
					i += 6
				}
			}
			if r < 0 || r >= 0xd800 && r < 0xe000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(s []byte, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case isDigit(c):
			r = r<<4 | rune(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			r = r<<4 | rune(c|0x20-'a'+10)
		default:
			return -1
		}
	}
	return r
}
