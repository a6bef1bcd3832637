// Package config loads the ini files of the logpipe components.
//
// Each component declares its configuration as a struct of section structs with
// `ini:"name"` tags, fills in its defaults, and calls Load. Keys missing from the
// file keep their defaults; unknown sections and keys are reported as errors so that a
// typo never silently falls back to a default.
//
// A field of type map[string]S tagged `ini:"prefix.*"` takes every section named
// [prefix.NAME] (for example [dataset.myapp]) as an S under NAME, with the same checks
// of its keys.
package config

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// MaxFileBytes bounds an ini file: configuration is small, and parsing costs a few
// hundred bytes of memory per line.
const MaxFileBytes = 1 << 20

// Load reads the ini file at path into v, a pointer to a struct whose fields are
// section structs tagged with the section name. Fields of v keep their current
// values for keys the file does not set.
func Load(path string, v any) error {
	data, err := readFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := load(data, v); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// readFile reads at most MaxFileBytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	return data, nil
}

func load(data []byte, v any) error {
	f, err := ini.LoadSources(ini.LoadOptions{
		Insensitive:              false,
		IgnoreInlineComment:      false,
		SpaceBeforeInlineComment: true,
	}, data)
	if err != nil {
		return err
	}
	if err := checkKnown(f, v); err != nil {
		return err
	}
	if err := f.StrictMapTo(v); err != nil {
		return err
	}
	if err := mapEmbedded(f, v); err != nil {
		return err
	}
	if err := setExplicit(f, v); err != nil {
		return err
	}
	return mapPrefixed(f, v)
}

// MaxPrefixedSections bounds how many [prefix.NAME] sections a file may have.
const MaxPrefixedSections = 256

// prefixOf returns the prefix of a `ini:"prefix.*"` tag, or "".
func prefixOf(sf reflect.StructField) string {
	name := tagName(sf)
	if p, ok := strings.CutSuffix(name, ".*"); ok && sf.Type.Kind() == reflect.Map && sf.Type.Key().Kind() == reflect.String &&
		sf.Type.Elem().Kind() == reflect.Struct {
		return p + "."
	}
	return ""
}

// mapPrefixed fills the map fields tagged `ini:"prefix.*"` from the sections
// [prefix.NAME].
func mapPrefixed(f *ini.File, v any) error {
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		prefix := prefixOf(rv.Type().Field(i))
		if prefix == "" {
			continue
		}
		m := rv.Field(i)
		n := 0
		for _, sec := range f.Sections() {
			name, ok := strings.CutPrefix(sec.Name(), prefix)
			if !ok {
				continue
			}
			if n++; n > MaxPrefixedSections {
				return fmt.Errorf("more than %d [%s*] sections", MaxPrefixedSections, prefix)
			}
			if name == "" {
				return fmt.Errorf("section [%s] has no name after %q", sec.Name(), prefix)
			}
			elem := reflect.New(m.Type().Elem())
			if err := sec.StrictMapTo(elem.Interface()); err != nil {
				return fmt.Errorf("[%s]: %w", sec.Name(), err)
			}
			if err := explicit(sec, elem.Elem()); err != nil {
				return err
			}
			if m.IsNil() {
				m.Set(reflect.MakeMap(m.Type()))
			}
			m.SetMapIndex(reflect.ValueOf(name), elem.Elem())
		}
	}
	return nil
}

// sections calls fn for each section struct of v that the file has.
func sections(f *ini.File, v any, fn func(sec *ini.Section, sv reflect.Value) error) error {
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		name := tagName(rv.Type().Field(i))
		sv := rv.Field(i)
		if name == "" || sv.Kind() != reflect.Struct || !f.HasSection(name) {
			continue
		}
		if err := fn(f.Section(name), sv); err != nil {
			return err
		}
	}
	return nil
}

// mapEmbedded fills the fields of structs embedded in a section struct (tagged
// `ini:"-"`, which ini.v1 skips) from the keys of that section: a group of keys
// that several components share, such as kafkasec.Config in [kafka], is
// declared once.
func mapEmbedded(f *ini.File, v any) error {
	return sections(f, v, func(sec *ini.Section, sv reflect.Value) error {
		for j := 0; j < sv.NumField(); j++ {
			if !sv.Type().Field(j).Anonymous || sv.Field(j).Kind() != reflect.Struct {
				continue
			}
			ev := sv.Field(j)
			for k := 0; k < ev.NumField(); k++ {
				key := tagName(ev.Type().Field(k))
				if key == "" || !sec.HasKey(key) {
					continue
				}
				if err := setField(ev.Field(k), sec.Key(key)); err != nil {
					return fmt.Errorf("[%s] %s: %w", sec.Name(), key, err)
				}
			}
		}
		return nil
	})
}

// setField sets a string, bool or integer field from an ini key.
func setField(field reflect.Value, k *ini.Key) error {
	switch field.Kind() {
	case reflect.String:
		field.SetString(k.String())
	case reflect.Bool:
		b, err := k.Bool()
		if err != nil {
			return err
		}
		field.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := k.Int64()
		if err != nil {
			return err
		}
		field.SetInt(n)
	default:
		return fmt.Errorf("unsupported field type %s", field.Type())
	}
	return nil
}

// setExplicit corrects two things ini.v1's mapping does for keys the file gives:
// it keeps the default for an empty string, but "listen =" must mean "off"; and it
// keeps the default for a zero (or negative) duration, but "initial_rebalance_delay =
// 0s" must mean no delay.
func setExplicit(f *ini.File, v any) error { return sections(f, v, explicit) }

// explicit is setExplicit for one section.
func explicit(sec *ini.Section, sv reflect.Value) error {
	durationType := reflect.TypeOf(time.Duration(0))
	for j := 0; j < sv.NumField(); j++ {
		key, field := tagName(sv.Type().Field(j)), sv.Field(j)
		if key == "" || !sec.HasKey(key) {
			continue
		}
		value := strings.TrimSpace(sec.Key(key).String())
		switch {
		case field.Type() == durationType:
			d, err := time.ParseDuration(value)
			if err != nil {
				return fmt.Errorf("[%s] %s: %w", sec.Name(), key, err)
			}
			field.SetInt(int64(d))
		case field.Kind() == reflect.String && value == "":
			field.SetString("")
		}
	}
	return nil
}

// interpolation is what ini.v1 expands in a value: %(key)s.
var interpolation = regexp.MustCompile(`%\([^)]+\)s`)

// checkKnown rejects sections and keys that v has no field for.
func checkKnown(f *ini.File, v any) error {
	rt := reflect.TypeOf(v)
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config target must be a pointer to a struct, got %T", v)
	}
	keysOf := func(t reflect.Type) map[string]bool {
		keys := map[string]bool{}
		for _, kf := range reflect.VisibleFields(t) {
			if k := tagName(kf); k != "" {
				keys[k] = true
			}
		}
		return keys
	}
	sections := map[string]map[string]bool{}
	prefixed := map[string]map[string]bool{} // by prefix, "dataset."
	for _, sf := range reflect.VisibleFields(rt.Elem()) {
		if p := prefixOf(sf); p != "" {
			prefixed[p] = keysOf(sf.Type.Elem())
			continue
		}
		name := tagName(sf)
		if name == "" || sf.Type.Kind() != reflect.Struct {
			continue
		}
		sections[name] = keysOf(sf.Type)
	}
	for _, sec := range f.Sections() {
		name := sec.Name()
		keys, ok := sections[name]
		for p, pk := range prefixed {
			if strings.HasPrefix(name, p) {
				keys, ok = pk, true
			}
		}
		if name == ini.DefaultSection {
			if len(sec.Keys()) > 0 {
				return fmt.Errorf("key %q outside any section", sec.Keys()[0].Name())
			}
			continue
		}
		if !ok {
			return fmt.Errorf("unknown section [%s]", name)
		}
		for _, k := range sec.Keys() {
			if !keys[k.Name()] {
				return fmt.Errorf("unknown key %q in section [%s]", k.Name(), name)
			}
			// ini.v1 would expand %(key)s, recursively and without a bound (keys
			// naming each other overflow the stack); logpipe's files do not use it.
			if ref := interpolation.FindString(k.Value()); ref != "" {
				return fmt.Errorf("[%s] %s: %s: references to other keys are not supported", name, k.Name(), ref)
			}
		}
	}
	return nil
}

func tagName(sf reflect.StructField) string {
	tag := sf.Tag.Get("ini")
	if tag == "-" || !sf.IsExported() {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return ""
}

// SplitList splits a comma-separated list, trimming spaces and dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
