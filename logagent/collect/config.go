// Package collect reads the agent's collection config, the list of files to ship and
// the topic each goes to, from etcd: it validates it, caches the last good one on
// disk, and follows changes live.
package collect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/internal/topicname"
	"github.com/logpipe/logpipe/logagent/tailer"
)

// Entry is one item of the collection config.
type Entry struct {
	Path    string   `json:"path"`              // file path or glob
	Topic   string   `json:"topic"`             // Kafka topic
	Key     string   `json:"key,omitempty"`     // partition key: "file" (default: host:path), "host", or "none"
	From    string   `json:"from,omitempty"`    // where to start a file seen for the first time: "beginning" (default) or "end"
	Exclude []string `json:"exclude,omitempty"` // globs of file paths to leave out
	// FollowSymlinks lets the agent read a file through a symlink: one at the path
	// itself, or one in a directory matched by a wildcard. By default a symlink there
	// is refused, so that whoever can write in a log directory cannot make the agent
	// ship another file (say, one holding secrets). Symlinks in the literal directories
	// of the path (/var/log in /var/log/app/*.log) are always followed.
	FollowSymlinks bool `json:"follow_symlinks,omitempty"`
	// Multiline joins continuation lines (a stack trace) to the line that starts an event.
	Multiline *Multiline `json:"multiline,omitempty"`
	// Fields are static labels carried with every record of the entry (as record
	// headers "fields.<name>") and indexed under labels.<name>.
	Fields map[string]string `json:"fields,omitempty"`
	// Format is how lines are written: "" or "raw" (as they are), "cri" (containerd,
	// CRI-O, Kubernetes) or "docker" (json-file). Container formats join partial lines
	// and keep the stream and the runtime's timestamp.
	Format string `json:"format,omitempty"`
	// Dataset says what kind of log the files hold, in ECS's event.dataset form
	// ("nginx.access"): it is sent as header event.dataset and chooses the
	// transfer's parser.
	Dataset string `json:"dataset,omitempty"`
	// Timezone is what times written without a zone mean (an IANA name or ±hh:mm),
	// sent as header event.timezone; default: the host's own zone.
	Timezone string `json:"timezone,omitempty"`
	// IncludeLines, when set, ships only the lines (or multiline events) that match
	// one of these RE2 expressions; ExcludeLines drops those that match one of its.
	// A line left out is acknowledged as if sent: the file's offset moves past it.
	IncludeLines []string `json:"include_lines,omitempty"`
	ExcludeLines []string `json:"exclude_lines,omitempty"`
}

// Limits of an entry's line filters.
const (
	MaxLineFilters     = 64
	MaxLineFilterBytes = 4096
)

// Limits of an entry's fields.
const (
	MaxFields          = 32
	MaxFieldNameBytes  = 64
	MaxFieldValueBytes = 1024
)

// fieldName is what a field's name may be: it becomes part of a header and of a
// document field name.
var fieldName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Multiline configures joining lines into events: a line matching Pattern starts an
// event; following lines that do not match join it.
type Multiline struct {
	Pattern  string `json:"pattern"`             // RE2 regular expression of a line that starts an event
	MaxLines int    `json:"max_lines,omitempty"` // lines per event at most (default 500)
	Timeout  string `json:"timeout,omitempty"`   // an event ends when no line came for this long (default "2s")
}

// Compile checks m and returns the tailer's form of it, with defaults applied.
func (m *Multiline) Compile() (*tailer.Multiline, error) {
	if m == nil {
		return nil, nil
	}
	if m.Pattern == "" {
		return nil, errors.New(`"multiline": "pattern" is missing`)
	}
	re, err := regexp.Compile(m.Pattern)
	if err != nil {
		return nil, fmt.Errorf(`"multiline": "pattern": %v`, err)
	}
	ml := &tailer.Multiline{Start: re, MaxLines: m.MaxLines, Timeout: 2 * time.Second}
	if ml.MaxLines == 0 {
		ml.MaxLines = 500
	}
	if ml.MaxLines < 1 {
		return nil, fmt.Errorf(`"multiline": "max_lines" %d must be at least 1`, m.MaxLines)
	}
	if m.Timeout != "" {
		if ml.Timeout, err = time.ParseDuration(m.Timeout); err != nil || ml.Timeout <= 0 {
			return nil, fmt.Errorf(`"multiline": "timeout" %q: want a positive duration such as "2s"`, m.Timeout)
		}
	}
	return ml, nil
}

// Config is a whole collection config: the value of /logagent/<host>/collect_config.
type Config []Entry

// Parse decodes and validates a collection config. The error says what is wrong and
// where (entry index and field).
func Parse(data []byte) (Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("invalid JSON: field %q must be a %s, got %s", te.Field, te.Type, te.Value)
		case errors.Is(err, io.EOF):
			return nil, errors.New("empty value: want a JSON array of {\"path\", \"topic\"} entries")
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value")
	}
	if c == nil {
		return nil, errors.New("want a JSON array of {\"path\", \"topic\"} entries, got null")
	}
	seen := map[string]int{}
	for i, e := range c {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if j, dup := seen[e.Path]; dup {
			return nil, fmt.Errorf("entry %d: path %q is already entry %d", i, e.Path, j)
		}
		seen[e.Path] = i
	}
	return c, nil
}

func (e Entry) validate() error {
	if strings.TrimSpace(e.Path) == "" {
		return errors.New(`"path" is missing`)
	}
	if !filepath.IsAbs(e.Path) {
		return fmt.Errorf(`"path" %q must be absolute`, e.Path)
	}
	if _, err := filepath.Match(e.Path, ""); err != nil {
		return fmt.Errorf(`"path" %q is not a valid glob: %v`, e.Path, err)
	}
	if e.Topic == "" {
		return errors.New(`"topic" is missing`)
	}
	if err := topicname.Validate(e.Topic); err != nil {
		return fmt.Errorf(`"topic": %v`, err)
	}
	switch e.Key {
	case "", "file", "host", "none":
	default:
		return fmt.Errorf(`"key" %q: want file, host or none`, e.Key)
	}
	switch e.From {
	case "", "beginning", "end":
	default:
		return fmt.Errorf(`"from" %q: want beginning or end`, e.From)
	}
	if _, err := e.Multiline.Compile(); err != nil {
		return err
	}
	for _, x := range e.Exclude {
		if _, err := filepath.Match(x, ""); err != nil {
			return fmt.Errorf(`"exclude" %q is not a valid glob: %v`, x, err)
		}
	}
	switch e.Format {
	case "", "raw", "cri", "docker":
	default:
		return fmt.Errorf(`"format" %q: want raw, cri or docker`, e.Format)
	}
	if e.Dataset != "" {
		if err := record.ValidDataset(e.Dataset); err != nil {
			return fmt.Errorf(`"dataset": %v`, err)
		}
	}
	if e.Timezone != "" {
		if _, err := record.ParseZone(e.Timezone); err != nil {
			return fmt.Errorf(`"timezone": %v`, err)
		}
	}
	if _, err := e.LineFilter(); err != nil {
		return err
	}
	if len(e.Fields) > MaxFields {
		return fmt.Errorf(`"fields": %d fields, at most %d`, len(e.Fields), MaxFields)
	}
	for k, v := range e.Fields {
		if len(k) > MaxFieldNameBytes || !fieldName.MatchString(k) || strings.Contains(k, "..") || strings.HasSuffix(k, ".") {
			return fmt.Errorf(`"fields": name %q: want letters, digits, '_', '-' and '.', at most %d bytes`, k, MaxFieldNameBytes)
		}
		if len(v) > MaxFieldValueBytes {
			return fmt.Errorf(`"fields": value of %q is %d bytes, at most %d`, k, len(v), MaxFieldValueBytes)
		}
	}
	return nil
}

// LineFilter compiles the entry's include_lines and exclude_lines; nil when it has
// neither.
func (e Entry) LineFilter() (*LineFilter, error) {
	if len(e.IncludeLines) == 0 && len(e.ExcludeLines) == 0 {
		return nil, nil
	}
	var f LineFilter
	for _, l := range []struct {
		name     string
		patterns []string
		into     *[]*regexp.Regexp
	}{{"include_lines", e.IncludeLines, &f.include}, {"exclude_lines", e.ExcludeLines, &f.exclude}} {
		if len(l.patterns) > MaxLineFilters {
			return nil, fmt.Errorf(`%q: %d expressions, at most %d`, l.name, len(l.patterns), MaxLineFilters)
		}
		for i, p := range l.patterns {
			if len(p) > MaxLineFilterBytes {
				return nil, fmt.Errorf(`%q %d: %d bytes, at most %d`, l.name, i, len(p), MaxLineFilterBytes)
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return nil, fmt.Errorf(`%q %d: %v`, l.name, i, err)
			}
			*l.into = append(*l.into, re)
		}
	}
	return &f, nil
}

// LineFilter decides which lines of an entry are shipped, as Filebeat's include_lines
// and exclude_lines do: with include expressions, only a line that matches one; then
// none that matches an exclude expression. RE2: linear in the line's length.
type LineFilter struct {
	include, exclude []*regexp.Regexp
}

// Keep reports whether a line is shipped. A nil filter keeps every line.
func (f *LineFilter) Keep(line []byte) bool {
	if f == nil {
		return true
	}
	if len(f.include) > 0 && !matchAny(f.include, line) {
		return false
	}
	return !matchAny(f.exclude, line)
}

func matchAny(res []*regexp.Regexp, line []byte) bool {
	for _, re := range res {
		if re.Match(line) {
			return true
		}
	}
	return false
}

// Access is how the files the entry matches may be opened: symlinks are followed in
// the literal directories of its path, the ones before any wildcard, and elsewhere
// only with FollowSymlinks.
func (e Entry) Access() tailer.Access {
	dir := filepath.Dir(filepath.Clean(e.Path))
	for dir != "/" && dir != "." && hasMeta(dir) {
		dir = filepath.Dir(dir)
	}
	return tailer.Access{Trusted: dir, FollowSymlinks: e.FollowSymlinks}
}

// hasMeta reports whether a path holds glob syntax (as filepath.Match reads it).
func hasMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// Diff compares two configs by path: entries only in next are added, entries only in
// prev removed, entries in both with other settings changed.
func Diff(prev, next Config) (added, removed, changed []Entry) {
	old := map[string]Entry{}
	for _, e := range prev {
		old[e.Path] = e
	}
	for _, e := range next {
		o, ok := old[e.Path]
		switch {
		case !ok:
			added = append(added, e)
		case !e.equal(o):
			changed = append(changed, e)
		}
		delete(old, e.Path)
	}
	for _, e := range prev {
		if _, ok := old[e.Path]; ok {
			removed = append(removed, e)
		}
	}
	return added, removed, changed
}

func (e Entry) equal(o Entry) bool { return reflect.DeepEqual(e, o) }
