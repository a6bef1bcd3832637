// Package estest is the Elasticsearch stand-in for logpipe's tests: Elasticsearch
// cannot be installed here, so this HTTP server follows the parts of its REST
// contract that logpipe relies on, closely enough to exercise every failure path.
// It plays one of three flavours (Flavor): Elasticsearch 7.17, Elasticsearch 8.x or
// OpenSearch 2.x, with their documented differences (see flavor.go).
//
// It implements:
//   - POST /_bulk and /<index>/_bulk: NDJSON actions (index, create, delete) with
//     per-item results (status, result, _version, error) and the top-level errors flag;
//     documents are kept by (index, _id), so indexing an existing id overwrites it
//     ("updated", version + 1) and create answers 409. Action lines with _type are
//     refused by 8.x and OpenSearch 2 (mapping types are gone); 7.17 answers "_type".
//   - data streams: a name matching a composable template with "data_stream" becomes
//     a data stream on its first write; it takes only create (index is refused with
//     400), needs @timestamp, stores in its write backing index .ds-<name>-<date>-<gen>,
//     and answers 409 for an _id that exists in the write index (only there: after a
//     rollover the same _id can be stored again). POST /<stream>/_rollover.
//   - GET /: cluster info of the flavour (X-Elastic-Product header on Elasticsearch
//     7.14+); HEAD /; GET /_cluster/health.
//   - PUT /_index_template/<name> (composable, with ES's rule that overlapping
//     patterns need distinct priorities; ES ships "logs" for logs-*-* at 100),
//     PUT /_template/<name> (legacy); an index's mapping comes from its template and
//     grows dynamically, and a document that does not fit it is refused with 400
//     mapper_parsing_exception (mapping.go).
//   - lifecycle: PUT /_ilm/policy/<name> on Elasticsearch, GET|PUT
//     /_plugins/_ism/policies/<id> on OpenSearch (an update needs if_seq_no and
//     if_primary_term); the other one answers 400 "no handler found".
//   - GET /_cat/indices/<pattern>?format=json, DELETE /<index>[,<index>] (8.x refuses
//     wildcards: action.destructive_requires_name).
//   - POST /<index>/_refresh, /_refresh: accepted (documents are visible at once).
//   - GET|POST /<index>/_count and /<index>/_search with {"query": {"ids":
//     {"values": [...]}}} or match_all, "size"; <index> may hold * and commas.
//   - security (SetAuth): basic or ApiKey credentials, 401 security_exception
//     otherwise; StartTLS serves https and may ask for client certificates.
//
// Failures are injected with ItemRule (per item: 429 es_rejected_execution_exception,
// 503, 400 mapper_parsing_exception, ...), RequestRule (the whole request: 429, 5xx)
// and Down/Up (connections refused). Fast mode answers every bulk item 201 without
// storing anything, for benchmarks.
package estest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Item is one bulk item as a rule sees it.
type Item struct {
	Action string // index, create or delete
	Index  string
	ID     string
	Source []byte // the document, nil for delete
}

// ItemRule decides the status of one bulk item: 0 means "process normally"; any
// other status fails the item with an error of the matching type.
type ItemRule func(Item) int

// RequestRule decides the status of a whole bulk request before any item is
// processed: 0 means "process normally".
type RequestRule func() int

// Doc is a stored document.
type Doc struct {
	Index      string // the index it is stored in (a backing index for a data stream)
	DataStream string // the data stream, if any
	ID         string
	Source     json.RawMessage
	Version    int64
	Stored     time.Time // when it was (last) indexed
}

// Server is a running stand-in.
type Server struct {
	addr   string
	flavor Flavor
	tls    *tls.Config // nil: plain http

	mu        sync.Mutex
	ln        net.Listener
	srv       *http.Server
	docs      map[string]map[string]*Doc // index -> id -> doc
	template  map[string]json.RawMessage // every template PUT, legacy or composable, by name
	composite map[string]*composable     // composable templates by name
	legacy    map[string]*legacyTemplate // legacy templates by name
	mappings  map[string]*indexMapping   // by index (see mapping.go)
	streams   map[string]*dataStream     // by name
	ilm       map[string]json.RawMessage
	ism       map[string]*ismPolicy
	auth      Auth
	lastAuth  string // scheme of the last accepted credentials: Basic, ApiKey or ""
	lastCert  string // common name of the last client certificate
	itemRule  ItemRule
	reqRule   RequestRule
	fast      bool
	observe   func([]byte, time.Time)

	readers sync.Pool // *bufio.Reader of bulk bodies

	// Counters.
	BulkRequests  atomic.Int64 // bulk requests received (including failed ones)
	BulkItems     atomic.Int64 // items received
	ItemsRejected atomic.Int64 // items answered with an error by ItemRule
	Indexed       atomic.Int64 // items stored (created or updated)
	Overwrites    atomic.Int64 // items that replaced an existing document
	Conflicts     atomic.Int64 // create items answered 409 (the _id exists)
}

// Start starts an Elasticsearch 7.17 stand-in on a free port of 127.0.0.1.
func Start() (*Server, error) { return StartFlavor(Elasticsearch7) }

// StartFlavor starts a stand-in of the given flavour on a free port of 127.0.0.1.
func StartFlavor(f Flavor) (*Server, error) { return StartTLS(f, nil) }

// StartTLS starts a stand-in that serves https with tc (its ClientAuth may ask for
// client certificates); nil tc serves http.
func StartTLS(f Flavor, tc *tls.Config) (*Server, error) {
	s := &Server{flavor: f, tls: tc, docs: map[string]map[string]*Doc{}, template: map[string]json.RawMessage{},
		composite: map[string]*composable{}, streams: map[string]*dataStream{}, mappings: map[string]*indexMapping{}, legacy: map[string]*legacyTemplate{}, ilm: map[string]json.RawMessage{}, ism: map[string]*ismPolicy{}}
	s.readers.New = func() any { return bufio.NewReaderSize(nil, 1<<20) }
	s.builtinTemplates()
	if err := s.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

// Flavor is the flavour the stand-in plays.
func (s *Server) Flavor() Flavor { return s.flavor }

func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("estest: listen %s: %w", addr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{Handler: s, ErrorLog: log.New(io.Discard, "", 0)}
	s.mu.Lock()
	s.ln, s.srv, s.addr = ln, srv, ln.Addr().String()
	s.mu.Unlock()
	go srv.Serve(ln)
	return nil
}

// URL is the base URL, http://127.0.0.1:port (https with StartTLS).
func (s *Server) URL() string {
	if s.tls != nil {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// Close stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Down closes the listener and every connection: clients get "connection refused"
// until Up.
func (s *Server) Down() { s.Close() }

// Up serves again on the same address.
func (s *Server) Up() error { return s.listen(s.addr) }

// SetItemRule installs a per-item failure rule (nil: none).
func (s *Server) SetItemRule(r ItemRule) {
	s.mu.Lock()
	s.itemRule = r
	s.mu.Unlock()
}

// SetRequestRule installs a whole-request failure rule (nil: none).
func (s *Server) SetRequestRule(r RequestRule) {
	s.mu.Lock()
	s.reqRule = r
	s.mu.Unlock()
}

// SetFast makes bulk requests count their items and answer 201 for each, storing
// nothing: for benchmarks. observe, if not nil, is shown each document and when it
// was indexed (the bytes are valid only during the call): a benchmark keeps what it
// measures, not the documents.
func (s *Server) SetFast(fast bool, observe func(source []byte, indexed time.Time)) {
	s.mu.Lock()
	s.fast, s.observe = fast, observe
	s.mu.Unlock()
}

// Docs returns every stored document of the indexes matching pattern (* allowed).
func (s *Server) Docs(pattern string) []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Doc
	for _, m := range s.docs {
		for _, d := range m {
			if matchIndex(pattern, d.Index) || (d.DataStream != "" && matchIndex(pattern, d.DataStream)) {
				out = append(out, *d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Index != out[j].Index {
			return out[i].Index < out[j].Index
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Count is the number of documents in the indexes matching pattern.
func (s *Server) Count(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for idx, m := range s.docs {
		if matchIndex(pattern, idx) {
			n += len(m)
		} else if ds := streamOf(idx); ds != "" && matchIndex(pattern, ds) {
			n += len(m)
		}
	}
	return n
}

// Templates returns the stored index templates by name.
func (s *Server) Templates() map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]json.RawMessage{}
	for k, v := range s.template {
		out[k] = v
	}
	return out
}

func matchIndex(pattern, index string) bool {
	for _, p := range strings.Split(pattern, ",") {
		if p == "" || p == "_all" || p == "*" {
			return true
		}
		if ok, _ := path.Match(p, index); ok {
			return true
		}
	}
	return false
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.flavor.productHeader() {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	if !s.authorized(w, r) {
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	last := parts[len(parts)-1]
	if s.serveCluster(w, r, parts) {
		return
	}
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		writeJSON(w, 200, s.flavor.rootInfo())
	case last == "_bulk" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		defaultIndex := ""
		if len(parts) == 2 {
			defaultIndex = parts[0]
		}
		s.bulk(w, r, defaultIndex)
	case parts[0] == "_cluster" && last == "health":
		writeJSON(w, 200, map[string]any{"cluster_name": "estest", "status": "green", "number_of_nodes": 1})
	case last == "_refresh":
		writeJSON(w, 200, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	case last == "_count":
		pattern := "*"
		if len(parts) == 2 {
			pattern = parts[0]
		}
		writeJSON(w, 200, map[string]any{"count": s.Count(pattern)})
	case last == "_search":
		pattern := "*"
		if len(parts) == 2 {
			pattern = parts[0]
		}
		s.search(w, r, pattern)
	default:
		writeError(w, 400, "illegal_argument_exception", fmt.Sprintf("estest does not implement %s %s", r.Method, r.URL.Path))
	}
}

// bulk handles one _bulk request.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defaultIndex string) {
	s.BulkRequests.Add(1)
	s.mu.Lock()
	reqRule, itemRule, fast, observe := s.reqRule, s.itemRule, s.fast, s.observe
	s.mu.Unlock()
	if reqRule != nil {
		if st := reqRule(); st != 0 {
			io.Copy(io.Discard, r.Body)
			writeError(w, st, errorType(st), "injected whole-request failure")
			return
		}
	}
	br := s.readers.Get().(*bufio.Reader)
	br.Reset(r.Body)
	defer func() { br.Reset(nil); s.readers.Put(br) }()
	if fast {
		s.fastBulk(w, br, observe)
		return
	}
	// The response is written by hand, item by item: a busy test pipeline sends
	// thousands of items a second, and maps per item made the stand-in's garbage
	// collection the largest part of the latencies measured through it.
	out := []byte(`{"took":1,"errors":false,"items":[`)
	hasErrors := false
	n := 0
	for {
		line, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, 400, "parse_exception", err.Error())
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		it, ok := parseAction(line)
		if !ok {
			writeError(w, 400, "illegal_argument_exception", fmt.Sprintf("malformed action line %q", line))
			return
		}
		if it.typed && !s.flavor.acceptsTypes() {
			writeError(w, 400, "illegal_argument_exception", fmt.Sprintf("Action/metadata line [%d] contains an unknown parameter [_type]", n*2+1))
			return
		}
		if it.Index == "" {
			it.Index = defaultIndex
		}
		if it.Action != "delete" {
			src, err := readLine(br)
			if err != nil {
				writeError(w, 400, "parse_exception", "action without a source line")
				return
			}
			it.Source = append([]byte(nil), src...)
		}
		s.BulkItems.Add(1)
		res := s.applyItem(it.Item, itemRule)
		if res.errType != "" {
			hasErrors = true
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = res.appendJSON(out, it.Action, s.flavor.acceptsTypes())
		n++
	}
	out = append(out, "]}\n"...)
	if hasErrors {
		out = bytes.Replace(out, []byte(`"errors":false`), []byte(`"errors":true`), 1)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(200)
	w.Write(out)
}

// action is a parsed bulk action line.
type action struct {
	Item
	typed bool // the line has _type
}

// parseAction reads an action line: one object with one key, the action (index,
// create, delete or update), whose value holds _index, _id and perhaps _type. Other
// lines are malformed, which Elasticsearch answers for the whole request.
func parseAction(line []byte) (action, bool) {
	type meta struct {
		Index string  `json:"_index"`
		ID    string  `json:"_id"`
		Type  *string `json:"_type"`
	}
	var a struct {
		Index  *meta `json:"index"`
		Create *meta `json:"create"`
		Delete *meta `json:"delete"`
		Update *meta `json:"update"`
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return action{}, false
	}
	var it action
	n := 0
	for _, c := range [...]struct {
		name string
		m    *meta
	}{{"index", a.Index}, {"create", a.Create}, {"delete", a.Delete}, {"update", a.Update}} {
		if c.m != nil {
			it = action{Item: Item{Action: c.name, Index: c.m.Index, ID: c.m.ID}, typed: c.m.Type != nil}
			n++
		}
	}
	return it, n == 1
}

// itemResult is a bulk item's result, as Elasticsearch answers it.
type itemResult struct {
	index, id, result  string
	status             int
	version            int64
	errType, errReason string
}

// appendJSON appends {"<action>":{...}} to b.
func (r itemResult) appendJSON(b []byte, action string, typeField bool) []byte {
	b = append(b, `{"`...)
	b = append(b, action...)
	b = append(b, `":{"_index":`...)
	b = strconv.AppendQuote(b, r.index)
	b = append(b, `,"_id":`...)
	b = strconv.AppendQuote(b, r.id)
	if typeField {
		b = append(b, `,"_type":"_doc"`...)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	if r.result != "" {
		b = append(b, `,"result":`...)
		b = strconv.AppendQuote(b, r.result)
	}
	if r.version != 0 {
		b = append(b, `,"_version":`...)
		b = strconv.AppendInt(b, r.version, 10)
	}
	if r.errType != "" {
		b = append(b, `,"error":{"type":`...)
		b = strconv.AppendQuote(b, r.errType)
		b = append(b, `,"reason":`...)
		b = strconv.AppendQuote(b, r.errReason)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// fastBulk acknowledges every item of a bulk request without storing it, writing the
// response by hand: a benchmark's stand-in should cost as little as it can.
func (s *Server) fastBulk(w http.ResponseWriter, br *bufio.Reader, observe func([]byte, time.Time)) {
	typeField := ""
	if s.flavor.acceptsTypes() {
		typeField = `"_type":"_doc",`
	}
	var out bytes.Buffer
	out.WriteString(`{"took":1,"errors":false,"items":[`)
	n := 0
	expectSource := false
	for {
		line, err := br.ReadSlice('\n') // no copy: only the action lines are looked at
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n') // a line longer than the buffer: skip the rest
		}
		if err != nil && err != io.EOF {
			writeError(w, 400, "parse_exception", err.Error())
			return
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if expectSource {
				expectSource = false
				if observe != nil {
					observe(bytes.TrimRight(line, "\r\n"), time.Now())
				}
			} else {
				action := "index"
				if bytes.Contains(line, []byte(`"delete"`)) {
					action = "delete"
				} else {
					if bytes.HasPrefix(bytes.TrimSpace(line), []byte(`{"create"`)) {
						action = "create"
					}
					expectSource = true
				}
				if n > 0 {
					out.WriteByte(',')
				}
				out.WriteString(`{"` + action + `":{` + typeField + `"status":201,"result":"created"}}`)
				n++
			}
		}
		if err == io.EOF {
			break
		}
	}
	s.BulkItems.Add(int64(n))
	out.WriteString("]}\n")
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(200)
	w.Write(out.Bytes())
}

func (s *Server) applyItem(it Item, rule ItemRule) itemResult {
	res := itemResult{index: it.Index, id: it.ID}
	fail := func(st int, reason string) itemResult {
		s.ItemsRejected.Add(1)
		res.status, res.errType, res.errReason = st, errorType(st), reason
		return res
	}
	switch it.Action {
	case "index", "create", "delete":
	default:
		return fail(400, "unknown action "+it.Action)
	}
	if rule != nil {
		if st := rule(it); st != 0 {
			return fail(st, "injected item failure")
		}
	}
	if it.Action != "delete" && !json.Valid(it.Source) {
		return fail(400, "failed to parse: source is not valid JSON")
	}
	if it.Index == "" || strings.ToLower(it.Index) != it.Index {
		return fail(400, fmt.Sprintf("invalid index name [%s]", it.Index))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stream := s.streamFor(it.Index)
	if stream != nil {
		if it.Action != "create" {
			return fail(400, "only write ops with an op_type of create are allowed in data streams")
		}
		var ts struct {
			Timestamp json.RawMessage `json:"@timestamp"`
		}
		if json.Unmarshal(it.Source, &ts) != nil || len(ts.Timestamp) == 0 {
			return fail(400, "data stream timestamp field [@timestamp] is missing")
		}
		it.Index = stream.writeIndex()
		res.index = it.Index
	}
	if it.Action != "delete" {
		if err := s.checkMapping(it.Index, it.Source); err != nil {
			return fail(400, err.Error())
		}
	}
	m := s.docs[it.Index]
	if m == nil {
		m = map[string]*Doc{}
		s.docs[it.Index] = m
	}
	if it.ID == "" {
		it.ID = fmt.Sprintf("auto-%d", s.BulkItems.Load())
		res.id = it.ID
	}
	old := m[it.ID]
	switch it.Action {
	case "delete":
		if old == nil {
			res.status, res.result = 404, "not_found"
			return res
		}
		delete(m, it.ID)
		res.status, res.result, res.version = 200, "deleted", old.Version+1
		return res
	case "create":
		if old != nil {
			s.ItemsRejected.Add(1)
			s.Conflicts.Add(1)
			res.status, res.errType, res.errReason = 409, "version_conflict_engine_exception", "document already exists"
			return res
		}
	}
	d := &Doc{Index: it.Index, ID: it.ID, Source: it.Source, Version: 1, Stored: time.Now()}
	if stream != nil {
		d.DataStream = stream.name
	}
	res.status, res.result = 201, "created"
	if old != nil {
		d.Version = old.Version + 1
		res.status, res.result = 200, "updated"
		s.Overwrites.Add(1)
	}
	m[it.ID] = d
	res.version = d.Version
	s.Indexed.Add(1)
	return res
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, pattern string) {
	var q struct {
		Size  *int `json:"size"`
		Query struct {
			IDs *struct {
				Values []string `json:"values"`
			} `json:"ids"`
		} `json:"query"`
	}
	body, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &q); err != nil {
			writeError(w, 400, "parsing_exception", err.Error())
			return
		}
	}
	size := 10
	if q.Size != nil {
		size = *q.Size
	}
	want := map[string]bool{}
	if q.Query.IDs != nil {
		for _, id := range q.Query.IDs.Values {
			want[id] = true
		}
	}
	var hits []map[string]any
	total := 0
	for _, d := range s.Docs(pattern) {
		if q.Query.IDs != nil && !want[d.ID] {
			continue
		}
		total++
		if len(hits) < size {
			hits = append(hits, map[string]any{"_index": d.Index, "_id": d.ID, "_version": d.Version, "_score": 1.0, "_source": d.Source})
		}
	}
	writeJSON(w, 200, map[string]any{"took": 1, "timed_out": false,
		"hits": map[string]any{"total": map[string]any{"value": total, "relation": "eq"}, "max_score": 1.0, "hits": hits}})
}

// readLine reads one NDJSON line without its newline. The line is valid until the
// next read from br (a line longer than br's buffer is copied).
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err == io.EOF && len(line) > 0 {
		return line, nil
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func errorType(status int) string {
	switch status {
	case 429:
		return "es_rejected_execution_exception"
	case 400:
		return "mapper_parsing_exception"
	case 404:
		return "index_not_found_exception"
	case 409:
		return "version_conflict_engine_exception"
	case 503:
		return "unavailable_shards_exception"
	default:
		return "exception"
	}
}

func writeError(w http.ResponseWriter, status int, typ, reason string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "reason": reason, "root_cause": []any{map[string]any{"type": typ, "reason": reason}}}, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
