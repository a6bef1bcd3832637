package parse

import (
	"errors"
	"fmt"
	"github.com/logpipe/logpipe/internal/record"
	"slices"
	"sort"
	"time"
)

// Input is what a parser needs besides the line.
type Input struct {
	// Location is the zone of times written without one (the record's
	// event.timezone); nil is read as UTC.
	Location *time.Location
	// Read is when the agent read the line: it gives a syslog time without a year
	// its year. Zero: now.
	Read time.Time
}

func (in Input) zone() *time.Location {
	if in.Location == nil {
		return time.UTC
	}
	return in.Location
}

// Parser parses one line into ev, which the caller has Reset. An error means the
// line does not match: its text says what did not match and where (for example
// "expected '[' before the time at byte 17"), without the dataset's name; the
// caller then discards ev's fields. Parsers are safe for concurrent use: their
// state is only in ev.
type Parser interface {
	Parse(line []byte, in Input, ev *Event) error
}

// The built-in datasets.
var builtins = map[string]Parser{
	"nginx.access":  accessParser{nginx: true},
	"apache.access": accessParser{},
	"nginx.error":   nginxError{},
	"apache.error":  apacheError{},
	"system.syslog": syslogParser{},
	"system.auth":   syslogParser{auth: true},
}

// Elasticsearch types of the fields.
const (
	tKeyword   = "keyword"
	tLong      = "long"
	tDouble    = "double"
	tBoolean   = "boolean"
	tIP        = "ip"
	tFlattened = "flattened"
)

// accessFields are the fields of both access logs.
var accessFields = map[string]string{
	fDestDomain: tKeyword, fDestIP: tIP, fDestPort: tLong,
	fSrcAddress: tKeyword, fSrcIP: tIP, fUserName: tKeyword,
	fMethod: tKeyword, fURL: tKeyword, fHTTPVersion: tKeyword,
	fStatus: tLong, fBodyBytes: tLong, fReferrer: tKeyword, fUserAgent: tKeyword,
}

var syslogFields = map[string]string{
	fHostname: tKeyword, fProcName: tKeyword, fPID: tLong,
	fPriority: tLong, fFacility: tLong, fSeverity: tLong,
	fVersion: tKeyword, fMsgID: tKeyword, fSD: tFlattened,
}

// builtinFields is every field each built-in dataset can produce, with its type.
var builtinFields = map[string]map[string]string{
	"nginx.access":  with(accessFields, map[string]string{fRemoteIPList: tKeyword, fXFF: tKeyword}),
	"apache.access": accessFields,
	"nginx.error":   {fLevel: tKeyword, fPID: tLong, fThreadID: tLong, fConnectionID: tLong},
	"apache.error": {fLevel: tKeyword, fModule: tKeyword, fPID: tLong, fThreadID: tLong,
		fSrcAddress: tKeyword, fSrcIP: tIP, fSrcPort: tLong},
	"system.syslog": syslogFields,
	"system.auth": with(syslogFields, map[string]string{
		fSSHEvent: tKeyword, fSSHMethod: tKeyword, fSSHSignature: tKeyword, fOutcome: tKeyword,
		fUserName: tKeyword, fSrcAddress: tKeyword, fSrcIP: tIP, fSrcPort: tLong,
		fSudoError: tKeyword, fSudoTTY: tKeyword, fSudoPWD: tKeyword, fSudoUser: tKeyword, fSudoCommand: tKeyword,
	}),
}

func with(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// ecsTypes are the types known ECS fields get in a custom dataset unless its
// Types say otherwise: the built-ins' fields and a few more.
var ecsTypes = func() map[string]string {
	m := map[string]string{
		"client.ip": tIP, "client.port": tLong, "server.ip": tIP, "server.port": tLong, "host.ip": tIP,
		"http.request.bytes": tLong, "http.response.bytes": tLong, "http.request.body.bytes": tLong,
		"event.duration": tLong, "process.parent.pid": tLong, "source.bytes": tLong, "destination.bytes": tLong,
	}
	for _, fields := range builtinFields {
		for k, v := range fields {
			if v != tFlattened {
				m[k] = v
			}
		}
	}
	return m
}()

// Builtin returns the built-in dataset names, sorted.
func Builtin() []string {
	names := make([]string, 0, len(builtins))
	for name := range builtins {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Set is the datasets known to the transfer: the built-ins plus custom ones. It
// is safe for concurrent use.
type Set struct {
	parsers  map[string]Parser
	zones    map[string]*time.Location
	mappings map[string]string
}

// NewSet returns the built-in datasets plus the custom ones in specs, by dataset name; a custom
// dataset may replace a built-in of the same name. It fails on an invalid name or
// spec, and when two datasets would map one field to different types (or one
// dataset's field is an object of another's: "a" beside "a.b"), since they share
// the index template.
func NewSet(specs map[string]Spec) (*Set, error) {
	s := &Set{parsers: make(map[string]Parser, len(builtins)+len(specs)),
		zones: make(map[string]*time.Location), mappings: make(map[string]string)}
	owner := make(map[string]string) // field -> a dataset that produces it
	add := func(dataset string, fields map[string]string) error {
		names := make([]string, 0, len(fields))
		for f := range fields {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
			t := fields[f]
			if have, ok := s.mappings[f]; ok && have != t {
				return fmt.Errorf("dataset %q: field %s is %s, but %s in dataset %q", dataset, f, t, have, owner[f])
			}
			for other := range s.mappings {
				if conflicts(other, f) {
					return fmt.Errorf("dataset %q: field %s conflicts with field %s of dataset %q (a value and an object)", dataset, f, other, owner[other])
				}
			}
			s.mappings[f] = t
			if _, ok := owner[f]; !ok {
				owner[f] = dataset
			}
		}
		return nil
	}
	for _, name := range Builtin() {
		if _, replaced := specs[name]; replaced {
			continue
		}
		s.parsers[name] = builtins[name]
		if err := add(name, builtinFields[name]); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if record.ValidDataset(name) != nil {
			return nil, fmt.Errorf("dataset %q: a name is lowercase letters, digits, '_' and '.', at most 100 bytes", name)
		}
		spec := specs[name]
		p, err := Compile(spec)
		if err != nil {
			return nil, fmt.Errorf("dataset %q: %w", name, err)
		}
		s.parsers[name] = p
		if spec.Timezone != "" {
			s.zones[name], _ = record.ParseZone(spec.Timezone) // Compile checked it
		}
		if err := add(name, p.(*custom).fieldTypes()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Lookup returns the parser of a dataset.
func (s *Set) Lookup(dataset string) (Parser, bool) {
	p, ok := s.parsers[dataset]
	return p, ok
}

// Zone returns a custom dataset's Timezone, nil if it has none.
func (s *Set) Zone(dataset string) *time.Location { return s.zones[dataset] }

// Datasets returns the names of the set's datasets, sorted.
func (s *Set) Datasets() []string {
	names := make([]string, 0, len(s.parsers))
	for name := range s.parsers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Mappings returns every field a parser of the set can produce, with its
// Elasticsearch type: ip, long, double, boolean, keyword or flattened (for
// log.syslog.structured_data). The fields json and logfmt datasets find in a
// line are not known in advance: only those their Types name are here. The
// document's own message (text) and @timestamp (date) are not parser fields and
// not here. The map is the caller's.
func (s *Set) Mappings() map[string]string {
	m := make(map[string]string, len(s.mappings))
	for k, v := range s.mappings {
		m[k] = v
	}
	return m
}

// errNoMatch is a regex that did not match.
var errNoMatch = errors.New("the line does not match the pattern")
