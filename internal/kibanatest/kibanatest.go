// Package kibanatest is the Kibana stand-in for logpipe's tests, beside the
// Elasticsearch one (internal/estest). It plays Kibana 7.17 or 8.x and checks what
// Kibana checks of the requests logpipe sends:
//   - GET /api/status: the version.
//   - 7.17: GET|POST /api/index_patterns/index_pattern[/<id>] with
//     {"index_pattern": {"id", "title", "timeFieldName"}}.
//   - 8.x: GET|POST /api/data_views/data_view[/<id>] with
//     {"data_view": {"id", "title", "name", "timeFieldName"}} (7.17 has no such API: 404).
//   - every POST needs the header kbn-xsrf (400 otherwise); with SetAuth, every
//     request needs basic or ApiKey credentials (401 otherwise); a second object
//     with the same id answers 409, with the same title 400 (Kibana's "Duplicate").
package kibanatest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
)

// View is a stored index pattern or data view.
type View struct {
	Kind          string // index_pattern or data_view
	ID            string
	Title         string
	Name          string
	TimeFieldName string
}

// Server is a running stand-in.
type Server struct {
	version string
	srv     *httptest.Server

	mu       sync.Mutex
	views    map[string]View // by id
	user     string
	password string
	apiKey   string
	creates  int
}

// Start starts a Kibana stand-in of version (e.g. "7.17.25", "8.15.3").
func Start(version string) *Server {
	s := &Server{version: version, views: map[string]View{}}
	s.srv = httptest.NewServer(s)
	return s
}

// URL is the base URL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetAuth requires basic credentials or an encoded API key on every request.
func (s *Server) SetAuth(user, password, apiKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.password, s.apiKey = user, password, apiKey
}

// Views returns what was created, by id.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, v := range s.views {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Creates counts the successful POSTs.
func (s *Server) Creates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates
}

func (s *Server) eight() bool { return !strings.HasPrefix(s.version, "7.") }

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	user, password, apiKey := s.user, s.password, s.apiKey
	s.mu.Unlock()
	if user != "" || apiKey != "" {
		scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		raw, _ := base64.StdEncoding.DecodeString(cred)
		if !(scheme == "Basic" && user != "" && string(raw) == user+":"+password) && !(scheme == "ApiKey" && apiKey != "" && cred == apiKey) {
			fail(w, 401, "Unauthorized")
			return
		}
	}
	if r.Method != http.MethodGet && r.Header.Get("kbn-xsrf") == "" {
		fail(w, 400, "Request must contain a kbn-xsrf header.")
		return
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/api/status" && r.Method == http.MethodGet:
		reply(w, 200, map[string]any{"name": "kibanatest", "version": map[string]any{"number": s.version, "build_flavor": "default"},
			"status": map[string]any{"overall": map[string]any{"level": "available", "state": "green"}}})
	case strings.HasPrefix(p, "/api/index_patterns/index_pattern"):
		s.serve(w, r, "index_pattern", strings.TrimPrefix(p, "/api/index_patterns/index_pattern"))
	case strings.HasPrefix(p, "/api/data_views/data_view") && s.eight():
		s.serve(w, r, "data_view", strings.TrimPrefix(p, "/api/data_views/data_view"))
	default:
		fail(w, 404, "Not Found")
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, kind, rest string) {
	id := strings.TrimPrefix(rest, "/")
	switch {
	case r.Method == http.MethodGet && id != "":
		s.mu.Lock()
		v, ok := s.views[id]
		s.mu.Unlock()
		if !ok || v.Kind != kind {
			fail(w, 404, fmt.Sprintf("Saved object [%s/%s] not found", strings.ReplaceAll(kind, "_", "-"), id))
			return
		}
		reply(w, 200, map[string]any{kind: map[string]any{"id": v.ID, "title": v.Title, "name": v.Name, "timeFieldName": v.TimeFieldName}})
	case r.Method == http.MethodPost && id == "":
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			fail(w, 400, "Unsupported Media Type")
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var req map[string]json.RawMessage
		if err := json.Unmarshal(body, &req); err != nil {
			fail(w, 400, "invalid JSON: "+err.Error())
			return
		}
		var spec struct {
			ID            string `json:"id"`
			Title         string `json:"title"`
			Name          string `json:"name"`
			TimeFieldName string `json:"timeFieldName"`
		}
		if err := json.Unmarshal(req[kind], &spec); err != nil || spec.Title == "" {
			fail(w, 400, fmt.Sprintf("[request body.%s.title]: expected value of type [string]", kind))
			return
		}
		for k := range req {
			if k != kind && k != "override" && k != "refresh_fields" {
				fail(w, 400, fmt.Sprintf("[request body.%s]: definition for this key is missing", k))
				return
			}
		}
		if spec.Name != "" && kind == "index_pattern" {
			fail(w, 400, "[request body.index_pattern.name]: definition for this key is missing")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.views[spec.ID]; ok && spec.ID != "" {
			fail(w, 409, fmt.Sprintf("Saved object [%s/%s] conflict", strings.ReplaceAll(kind, "_", "-"), spec.ID))
			return
		}
		for _, v := range s.views {
			if v.Title == spec.Title {
				fail(w, 400, "Duplicate "+strings.ReplaceAll(kind, "_", " ")+": "+spec.Title)
				return
			}
		}
		if spec.ID == "" {
			spec.ID = fmt.Sprintf("generated-%d", len(s.views)+1)
		}
		v := View{Kind: kind, ID: spec.ID, Title: spec.Title, Name: spec.Name, TimeFieldName: spec.TimeFieldName}
		s.views[spec.ID] = v
		s.creates++
		reply(w, 200, map[string]any{kind: map[string]any{"id": v.ID, "title": v.Title, "name": v.Name, "timeFieldName": v.TimeFieldName}})
	default:
		fail(w, 404, "Not Found")
	}
}
