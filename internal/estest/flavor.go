package estest

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Flavor is the kind and version of cluster the stand-in plays.
type Flavor struct {
	Distribution string // "elasticsearch" or "opensearch"
	Version      string // version.number, e.g. "8.15.3"
}

// The flavours logpipe supports, and older ones it must refuse or treat apart.
var (
	Elasticsearch7 = Flavor{"elasticsearch", "7.17.25"}
	Elasticsearch8 = Flavor{"elasticsearch", "8.15.3"}
	OpenSearch2    = Flavor{"opensearch", "2.17.1"}
	// Elasticsearch77 predates composable templates and data streams (legacy
	// _template only) and the X-Elastic-Product header.
	Elasticsearch77 = Flavor{"elasticsearch", "7.7.1"}
	// Elasticsearch6 still has mapping types: logpipe refuses it.
	Elasticsearch6 = Flavor{"elasticsearch", "6.8.23"}
)

// Flavors are the supported flavours: the transfer's tests run against each.
func Flavors() []Flavor { return []Flavor{Elasticsearch7, Elasticsearch8, OpenSearch2} }

// String is "elasticsearch 8.15.3".
func (f Flavor) String() string { return f.Distribution + " " + f.Version }

func (f Flavor) openSearch() bool { return f.Distribution == "opensearch" }

// atLeast compares the version with major.minor.
func (f Flavor) atLeast(major, minor int) bool {
	parts := strings.SplitN(f.Version, ".", 3)
	ma, _ := strconv.Atoi(parts[0])
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return ma > major || (ma == major && mi >= minor)
}

// productHeader: Elasticsearch 7.14+ sends X-Elastic-Product on every response.
func (f Flavor) productHeader() bool { return !f.openSearch() && f.atLeast(7, 14) }

// acceptsTypes: 7.x still takes (deprecated) _type in bulk actions and answers it.
func (f Flavor) acceptsTypes() bool { return !f.openSearch() && !f.atLeast(8, 0) }

// composable: _index_template exists on Elasticsearch 7.8+ and every OpenSearch.
func (f Flavor) composable() bool { return f.openSearch() || f.atLeast(7, 8) }

// dataStreams: Elasticsearch 7.9+ and every OpenSearch.
func (f Flavor) dataStreams() bool { return f.openSearch() || f.atLeast(7, 9) }

func (f Flavor) rootInfo() map[string]any {
	if f.openSearch() {
		return map[string]any{
			"name": "estest", "cluster_name": "estest", "cluster_uuid": "estest",
			"version": map[string]any{"distribution": "opensearch", "number": f.Version, "build_type": "tar",
				"lucene_version": "9.11.1", "minimum_wire_compatibility_version": "7.10.0", "minimum_index_compatibility_version": "7.0.0"},
			"tagline": "The OpenSearch Project: https://opensearch.org/",
		}
	}
	return map[string]any{
		"name": "estest", "cluster_name": "estest", "cluster_uuid": "estest",
		"version": map[string]any{"number": f.Version, "build_flavor": "default", "build_type": "tar",
			"lucene_version": "9.11.1", "minimum_wire_compatibility_version": "7.17.0"},
		"tagline": "You Know, for Search",
	}
}

// composable is a composable index template.
type composable struct {
	name       string
	patterns   []string
	priority   int
	dataStream bool
	builtin    bool
	mappings   json.RawMessage // template.mappings
}

func (c *composable) matches(name string) bool {
	for _, p := range c.patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// dataStream is a data stream and its backing indices.
type dataStream struct {
	name       string
	generation int
	created    time.Time
}

func (d *dataStream) writeIndex() string {
	return fmt.Sprintf(".ds-%s-%s-%06d", d.name, d.created.UTC().Format("2006.01.02"), d.generation)
}

// streamOf is the data stream of a backing index name, or "".
func streamOf(index string) string {
	if !strings.HasPrefix(index, ".ds-") || len(index) < len(".ds-")+18 {
		return ""
	}
	return index[len(".ds-") : len(index)-18] // -yyyy.MM.dd-000001
}

// ismPolicy is an OpenSearch ISM policy with its optimistic-concurrency numbers.
type ismPolicy struct {
	body  json.RawMessage
	seqNo int
}

// builtinTemplates installs what the flavour ships: Elasticsearch 7.9+ has the
// "logs" template (logs-*-*, priority 100, data streams).
func (s *Server) builtinTemplates() {
	if !s.flavor.openSearch() && s.flavor.dataStreams() {
		s.composite["logs"] = &composable{name: "logs", patterns: []string{"logs-*-*"}, priority: 100, dataStream: true, builtin: true}
	}
}

// streamFor returns the data stream name writes to, creating it when a composable
// template with data_stream matches a name that is not an index. s.mu is held.
func (s *Server) streamFor(name string) *dataStream {
	if d := s.streams[name]; d != nil {
		return d
	}
	if !s.flavor.dataStreams() || s.docs[name] != nil {
		return nil
	}
	if t := s.templateFor(name); t != nil && t.dataStream {
		d := &dataStream{name: name, generation: 1, created: time.Now()}
		s.streams[name] = d
		return d
	}
	return nil
}

// templateFor is the composable template of highest priority matching name.
func (s *Server) templateFor(name string) *composable {
	var best *composable
	for _, t := range s.composite {
		if t.matches(name) && (best == nil || t.priority > best.priority) {
			best = t
		}
	}
	return best
}

// Rollover starts a new write backing index for a data stream.
func (s *Server) Rollover(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.streams[name]
	if d == nil {
		return fmt.Errorf("no data stream %s", name)
	}
	d.generation++
	return nil
}

// DataStreams lists the data streams by name.
func (s *Server) DataStreams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.streams {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ComposableTemplates returns the composable templates PUT (not the built-in ones).
func (s *Server) ComposableTemplates() map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]json.RawMessage{}
	for n, t := range s.composite {
		if !t.builtin {
			out[n] = s.template[n]
		}
	}
	return out
}

// LegacyTemplates returns the names of the templates PUT with /_template.
func (s *Server) LegacyTemplates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.template {
		if s.composite[n] == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// LifecyclePolicies returns the ILM (Elasticsearch) or ISM (OpenSearch) policies.
func (s *Server) LifecyclePolicies() map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]json.RawMessage{}
	for n, p := range s.ilm {
		out[n] = p
	}
	for n, p := range s.ism {
		out[n] = p.body
	}
	return out
}

// Indices lists the (non-hidden) indices holding documents.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.docs {
		if !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Auth is what SetAuth requires of every request: a user and password (basic), or
// an API key given as its encoded form (base64 of id:key, as Elasticsearch prints it).
type Auth struct {
	Username, Password string
	APIKey             string
}

// SetAuth requires credentials on every request (a zero Auth: none).
func (s *Server) SetAuth(a Auth) {
	s.mu.Lock()
	s.auth = a
	s.mu.Unlock()
}

// LastAuth is the scheme of the last accepted credentials (Basic, ApiKey or "") and
// the common name of the last client certificate.
func (s *Server) LastAuth() (scheme, certCN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuth, s.lastCert
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	a := s.auth
	s.mu.Unlock()
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	ok := a == Auth{}
	switch {
	case scheme == "Basic" && a.Username != "":
		raw, _ := base64.StdEncoding.DecodeString(cred)
		ok = subtle.ConstantTimeCompare(raw, []byte(a.Username+":"+a.Password)) == 1
	case scheme == "ApiKey" && a.APIKey != "":
		ok = subtle.ConstantTimeCompare([]byte(cred), []byte(a.APIKey)) == 1
	}
	if !ok {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8", ApiKey`)
		writeError(w, 401, "security_exception", "missing authentication credentials for REST request ["+r.URL.Path+"]")
		return false
	}
	s.mu.Lock()
	if a != (Auth{}) {
		s.lastAuth = scheme
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		s.lastCert = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	s.mu.Unlock()
	return true
}

// serveCluster serves templates, lifecycle policies, rollover and index listing and
// deletion; it reports whether it answered.
func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request, parts []string) bool {
	noHandler := func() bool {
		io.Copy(io.Discard, r.Body)
		writeJSON(w, 400, map[string]any{"error": fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.Path, r.Method), "status": 400})
		return true
	}
	readJSON := func() ([]byte, bool) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if !json.Valid(body) {
			writeError(w, 400, "parse_exception", "request body is not valid JSON")
			return nil, false
		}
		return body, true
	}
	switch {
	case parts[0] == "_template" && len(parts) == 2 && r.Method == http.MethodPut:
		body, ok := readJSON()
		if !ok {
			return true
		}
		var lt struct {
			IndexPatterns []string        `json:"index_patterns"`
			Order         int             `json:"order"`
			Mappings      json.RawMessage `json:"mappings"`
		}
		json.Unmarshal(body, &lt)
		s.mu.Lock()
		s.template[parts[1]] = body
		s.legacy[parts[1]] = &legacyTemplate{patterns: lt.IndexPatterns, order: lt.Order, mappings: lt.Mappings}
		delete(s.composite, parts[1])
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"acknowledged": true})
	case parts[0] == "_index_template" && len(parts) == 2 && r.Method == http.MethodPut:
		if !s.flavor.composable() {
			return noHandler()
		}
		body, ok := readJSON()
		if !ok {
			return true
		}
		var t struct {
			IndexPatterns []string        `json:"index_patterns"`
			Priority      int             `json:"priority"`
			DataStream    json.RawMessage `json:"data_stream"`
			Template      struct {
				Mappings json.RawMessage `json:"mappings"`
			} `json:"template"`
		}
		if err := json.Unmarshal(body, &t); err != nil || len(t.IndexPatterns) == 0 {
			writeError(w, 400, "action_request_validation_exception", "index patterns are missing")
			return true
		}
		if typ := s.flavor.unsupportedType(t.Template.Mappings); typ != "" {
			writeError(w, 400, "mapper_parsing_exception", fmt.Sprintf("Failed to parse mapping [_doc]: No handler for type [%s] declared on field", typ))
			return true
		}
		c := &composable{name: parts[1], patterns: t.IndexPatterns, priority: t.Priority,
			dataStream: len(t.DataStream) > 0 && string(t.DataStream) != "null", mappings: t.Template.Mappings}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, o := range s.composite {
			if o.name != c.name && o.priority == c.priority && overlap(o.patterns, c.patterns) {
				writeError(w, 400, "illegal_argument_exception", fmt.Sprintf(
					"index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
					c.name, c.patterns, o.name, o.name, o.patterns, c.priority))
				return true
			}
		}
		s.template[c.name] = body
		s.composite[c.name] = c
		delete(s.legacy, c.name)
		writeJSON(w, 200, map[string]any{"acknowledged": true})
	case parts[0] == "_ilm" && len(parts) == 3 && parts[1] == "policy" && r.Method == http.MethodPut:
		if s.flavor.openSearch() {
			return noHandler()
		}
		body, ok := readJSON()
		if !ok {
			return true
		}
		var p struct {
			Policy *struct {
				Phases map[string]json.RawMessage `json:"phases"`
			} `json:"policy"`
		}
		if json.Unmarshal(body, &p) != nil || p.Policy == nil || len(p.Policy.Phases) == 0 {
			writeError(w, 400, "x_content_parse_exception", "policy with phases expected")
			return true
		}
		s.mu.Lock()
		s.ilm[parts[2]] = body
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"acknowledged": true})
	case len(parts) == 4 && parts[0] == "_plugins" && parts[1] == "_ism" && parts[2] == "policies":
		if !s.flavor.openSearch() {
			return noHandler()
		}
		s.servePolicy(w, r, parts[3])
	case len(parts) == 2 && parts[1] == "_rollover" && r.Method == http.MethodPost:
		if err := s.Rollover(parts[0]); err != nil {
			writeError(w, 400, "illegal_argument_exception", err.Error())
			return true
		}
		writeJSON(w, 200, map[string]any{"acknowledged": true, "rolled_over": true})
	case len(parts) >= 2 && parts[0] == "_cat" && parts[1] == "indices" && r.Method == http.MethodGet:
		pattern := "*"
		if len(parts) == 3 {
			pattern = parts[2]
		}
		var rows []map[string]string
		for _, n := range s.Indices() {
			if matchIndex(pattern, n) {
				rows = append(rows, map[string]string{"index": n})
			}
		}
		if rows == nil {
			rows = []map[string]string{}
		}
		writeJSON(w, 200, rows)
	case len(parts) == 1 && parts[0] != "" && !strings.HasPrefix(parts[0], "_") && r.Method == http.MethodDelete:
		names := strings.Split(parts[0], ",")
		if s.flavor.atLeast(8, 0) && !s.flavor.openSearch() && strings.ContainsAny(parts[0], "*?") {
			writeError(w, 400, "illegal_argument_exception", "Wildcard expressions or all indices are not allowed")
			return true
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, n := range names {
			if s.docs[n] == nil {
				writeError(w, 404, "index_not_found_exception", "no such index ["+n+"]")
				return true
			}
		}
		for _, n := range names {
			delete(s.docs, n)
		}
		writeJSON(w, 200, map[string]any{"acknowledged": true})
	default:
		return false
	}
	return true
}

// servePolicy is OpenSearch's ISM policy API: GET, and PUT that creates, or updates
// with if_seq_no and if_primary_term (without them an existing policy answers 409).
func (s *Server) servePolicy(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.ism[id]
	switch r.Method {
	case http.MethodGet:
		if p == nil {
			writeJSON(w, 404, map[string]any{"error": map[string]any{"type": "status_exception", "reason": "Policy not found"}, "status": 404})
			return
		}
		writeJSON(w, 200, map[string]any{"_id": id, "_version": p.seqNo + 1, "_seq_no": p.seqNo, "_primary_term": 1, "policy": json.RawMessage(p.body)})
	case http.MethodPut:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var req struct {
			Policy *struct {
				States []json.RawMessage `json:"states"`
			} `json:"policy"`
		}
		if json.Unmarshal(body, &req) != nil || req.Policy == nil || len(req.Policy.States) == 0 {
			writeError(w, 400, "illegal_argument_exception", "policy with states expected")
			return
		}
		q := r.URL.Query()
		if p != nil {
			if q.Get("if_seq_no") != strconv.Itoa(p.seqNo) || q.Get("if_primary_term") != "1" {
				writeError(w, 409, "version_conflict_engine_exception", "["+id+"]: version conflict, document already exists")
				return
			}
			p.body, p.seqNo = body, p.seqNo+1
			writeJSON(w, 200, map[string]any{"_id": id, "_seq_no": p.seqNo, "_primary_term": 1})
			return
		}
		s.ism[id] = &ismPolicy{body: body}
		writeJSON(w, 201, map[string]any{"_id": id, "_seq_no": 0, "_primary_term": 1})
	default:
		writeError(w, 405, "illegal_argument_exception", "method not allowed")
	}
}

// overlap approximates Elasticsearch's automaton intersection of two pattern lists:
// two globs overlap when one, read as a name, matches the other.
func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if ok, _ := path.Match(x, y); ok {
				return true
			}
			if ok, _ := path.Match(y, x); ok {
				return true
			}
		}
	}
	return false
}
