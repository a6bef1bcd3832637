package estest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Mappings: like Elasticsearch, the stand-in gives each index a mapping when it is
// first written, from the template that matches it (composable of highest priority,
// else legacy), and extends it dynamically with the fields documents bring (a string
// becomes keyword, an integer long, a fraction float, true/false boolean, an object an
// object). A document that does not fit is refused with 400 mapper_parsing_exception,
// as Elasticsearch does: a value where the mapping has an object or the reverse, a
// value a typed field cannot take (long, integer, float, double, ip, date, boolean),
// or more than totalFieldsLimit fields in the index. A document's new fields join the
// mapping only when it is stored.

// totalFieldsLimit is Elasticsearch's index.mapping.total_fields.limit default.
const totalFieldsLimit = 1000

// mfield is one field of a mapping: a type, or an object's properties.
type mfield struct {
	typ   string             // "object" for an object
	props map[string]*mfield // an object's fields
}

// indexMapping is one index's mapping.
type indexMapping struct {
	root   *mfield
	fields int
}

// legacyTemplate is a template PUT with /_template.
type legacyTemplate struct {
	patterns []string
	order    int
	mappings json.RawMessage
}

// parseMappings reads {"properties": {...}} into a mapping.
func parseMappings(raw json.RawMessage) *mfield {
	root := &mfield{typ: "object", props: map[string]*mfield{}}
	var m struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return root
	}
	var fill func(dst *mfield, props map[string]json.RawMessage)
	fill = func(dst *mfield, props map[string]json.RawMessage) {
		for name, def := range props {
			var f struct {
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
			}
			if json.Unmarshal(def, &f) != nil {
				continue
			}
			if f.Properties != nil || f.Type == "" || f.Type == "object" {
				o := &mfield{typ: "object", props: map[string]*mfield{}}
				fill(o, f.Properties)
				dst.props[name] = o
				continue
			}
			dst.props[name] = &mfield{typ: f.Type}
		}
	}
	fill(root, m.Properties)
	return root
}

func countFields(f *mfield) int {
	n := 0
	for _, c := range f.props {
		n++
		if c.props != nil {
			n += countFields(c)
		}
	}
	return n
}

// mappingFor returns the mapping of index, creating it from the templates on its
// first write. s.mu is held.
func (s *Server) mappingFor(index string) *indexMapping {
	if m := s.mappings[index]; m != nil {
		return m
	}
	var raw json.RawMessage
	name := index // a data stream's backing index takes the stream's template
	if ds := streamOf(index); ds != "" {
		name = ds
	}
	if t := s.templateFor(name); t != nil {
		raw = t.mappings
	} else {
		names := make([]string, 0, len(s.legacy))
		for n := range s.legacy {
			names = append(names, n)
		}
		sort.Strings(names)
		best := -1 << 31
		for _, n := range names {
			t := s.legacy[n]
			for _, p := range t.patterns {
				if ok, _ := path.Match(p, name); ok && t.order > best {
					raw, best = t.mappings, t.order
				}
			}
		}
	}
	root := parseMappings(raw)
	m := &indexMapping{root: root, fields: countFields(root)}
	s.mappings[index] = m
	return m
}

// newField is a field a document adds to a mapping.
type newField struct {
	parent *mfield
	name   string
	f      *mfield
}

// checkMapping checks a document against the mapping of index and adds its new
// fields when it fits. s.mu is held.
func (s *Server) checkMapping(index string, source []byte) error {
	m := s.mappingFor(index)
	dec := json.NewDecoder(bytes.NewReader(source))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("failed to parse: %v", err)
	}
	var added []newField
	if err := checkObject(m.root, "", doc, &added); err != nil {
		return err
	}
	n := 0
	for _, a := range added {
		n += 1 + countFields(a.f)
	}
	if m.fields+n > totalFieldsLimit {
		return errors.New("Limit of total fields [" + strconv.Itoa(totalFieldsLimit) + "] has been exceeded while adding new fields [" + strconv.Itoa(n) + "]") // Elasticsearch's words
	}
	for _, a := range added {
		if a.parent.props[a.name] == nil {
			a.parent.props[a.name] = a.f
		}
	}
	m.fields += n
	return nil
}

func checkObject(obj *mfield, prefix string, v map[string]any, added *[]newField) error {
	for name, val := range v {
		full := prefix + name
		if name == "" {
			return fmt.Errorf("field name cannot be an empty string")
		}
		if strings.Contains(name, ".") {
			// Elasticsearch reads a dotted name as objects.
			head, rest, _ := strings.Cut(name, ".")
			if head == "" || rest == "" {
				return fmt.Errorf("field name cannot contain only whitespace or dots: [%s]", full)
			}
			if err := checkObject(obj, prefix, map[string]any{head: map[string]any{rest: val}}, added); err != nil {
				return err
			}
			continue
		}
		f := obj.props[name]
		if f == nil {
			// Added by an earlier field of this document?
			for _, a := range *added {
				if a.parent == obj && a.name == name {
					f = a.f
				}
			}
		}
		if f == nil {
			f = dynamic(val)
			if f == nil {
				continue // null or an empty array: no mapping
			}
			*added = append(*added, newField{obj, name, f})
		}
		if err := checkValue(f, full, val, added); err != nil {
			return err
		}
	}
	return nil
}

// dynamic is the mapping Elasticsearch gives a new field from its first value.
func dynamic(v any) *mfield {
	switch x := v.(type) {
	case map[string]any:
		return &mfield{typ: "object", props: map[string]*mfield{}}
	case []any:
		for _, e := range x {
			if f := dynamic(e); f != nil {
				return f
			}
		}
		return nil
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return &mfield{typ: "long"}
		}
		return &mfield{typ: "float"}
	case bool:
		return &mfield{typ: "boolean"}
	case string:
		return &mfield{typ: "keyword"}
	}
	return nil
}

func checkValue(f *mfield, full string, v any, added *[]newField) error {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if err := checkValue(f, full, e, added); err != nil {
				return err
			}
		}
		return nil
	}
	if v == nil {
		return nil
	}
	obj, isObj := v.(map[string]any)
	if f.typ == "flattened" {
		return nil // takes any object, its leaves as keywords
	}
	if f.typ == "object" {
		if !isObj {
			return fmt.Errorf("object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", full, full)
		}
		return checkObject(f, full+".", obj, added)
	}
	if isObj {
		return fmt.Errorf("failed to parse field [%s] of type [%s]: tried to parse a concrete value but found an object", full, f.typ)
	}
	bad := func() error {
		return fmt.Errorf("failed to parse field [%s] of type [%s]: value [%v]", full, f.typ, v)
	}
	switch f.typ {
	case "long", "integer", "short", "byte":
		switch x := v.(type) {
		case json.Number:
			if _, err := strconv.ParseInt(string(x), 10, 64); err != nil {
				if fl, err := strconv.ParseFloat(string(x), 64); err != nil || fl != float64(int64(fl)) {
					return bad()
				}
			}
		case string: // coerced, as Elasticsearch does by default
			if _, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
		if f.typ == "integer" {
			if n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64); err == nil && (n > 1<<31-1 || n < -1<<31) {
				return bad()
			}
		}
	case "float", "double", "half_float", "scaled_float":
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
	case "boolean":
		switch x := v.(type) {
		case bool:
		case string:
			if x != "true" && x != "false" && x != "" {
				return bad()
			}
		default:
			return bad()
		}
	case "ip":
		x, ok := v.(string)
		if !ok {
			return bad()
		}
		if _, err := netip.ParseAddr(x); err != nil {
			return fmt.Errorf("failed to parse field [%s] of type [ip]: '%s' is not an IP string literal", full, x)
		}
	case "date":
		switch x := v.(type) {
		case json.Number:
		case string:
			if !isDate(x) {
				return fmt.Errorf("failed to parse field [%s] of type [date]: failed to parse date field [%s] with format [strict_date_optional_time||epoch_millis]", full, x)
			}
		default:
			return bad()
		}
	}
	return nil
}

// isDate reports whether s is a date Elasticsearch's default date format reads.
func isDate(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return true // epoch_millis
	}
	return false
}

// Mapping returns the mapping of index as dotted field name -> type (objects left
// out), as GET /<index>/_mapping would show it.
func (s *Server) Mapping(index string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	m := s.mappings[index]
	if m == nil {
		return out
	}
	var walk func(f *mfield, prefix string)
	walk = func(f *mfield, prefix string) {
		for name, c := range f.props {
			if c.props != nil {
				walk(c, prefix+name+".")
			} else {
				out[prefix+name] = c.typ
			}
		}
	}
	walk(m.root, "")
	return out
}

// unsupportedType returns a field type of mappings the flavour has no handler for
// (OpenSearch has no flattened), or "".
func (f Flavor) unsupportedType(mappings json.RawMessage) string {
	if !f.openSearch() {
		return ""
	}
	var walk func(m *mfield) string
	walk = func(m *mfield) string {
		for _, c := range m.props {
			if c.typ == "flattened" {
				return c.typ
			}
			if c.props != nil {
				if t := walk(c); t != "" {
					return t
				}
			}
		}
		return ""
	}
	return walk(parseMappings(mappings))
}
