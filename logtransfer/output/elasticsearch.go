package output

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/logpipe/logpipe/logtransfer/document"
	"github.com/olivere/elastic/v7"
)

// ESConfig configures the Elasticsearch sink.
type ESConfig struct {
	URLs         []string
	Username     string
	Password     string
	CAFile       string // PEM bundle to trust, for https
	Insecure     bool   // skip certificate verification (explicit opt-in)
	Sniff        bool   // discover nodes; off by default (wrong behind docker/NAT)
	IndexPattern string // for the index template, e.g. {topic}-{date}
	Template     bool   // install the index template at start
	Timeout      time.Duration
}

// ES is the Elasticsearch sink, using bulk requests.
type ES struct {
	c  *elastic.Client
	tr *http.Transport
}

// NewES connects to Elasticsearch and, if configured, installs the index template.
// It does not wait for Elasticsearch to be up: writes are retried by the caller.
func NewES(ctx context.Context, cfg ESConfig) (*ES, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if cfg.CAFile != "" || cfg.Insecure {
		tc := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // explicit opt-in
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("elasticsearch ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("elasticsearch ca_file %s: no certificates found", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	opts := []elastic.ClientOptionFunc{
		elastic.SetURL(cfg.URLs...),
		elastic.SetSniff(cfg.Sniff),
		elastic.SetHealthcheck(false),
		elastic.SetHttpClient(&http.Client{Transport: tr, Timeout: timeout}),
		elastic.SetRetrier(elastic.NewStopRetrier()), // retries are the transfer's, with its backoff
	}
	if cfg.Username != "" {
		opts = append(opts, elastic.SetBasicAuth(cfg.Username, cfg.Password))
	}
	c, err := elastic.NewSimpleClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	if cfg.Sniff {
		if c, err = elastic.NewClient(opts...); err != nil {
			return nil, fmt.Errorf("elasticsearch client: %w", err)
		}
	}
	es := &ES{c: c, tr: tr}
	if cfg.Template {
		if err := es.installTemplate(ctx, cfg.IndexPattern); err != nil {
			return nil, err
		}
	}
	return es, nil
}

// installTemplate maps the document fields with ECS types, so that a Kibana data view
// on @timestamp works at once.
func (e *ES) installTemplate(ctx context.Context, pattern string) error {
	if pattern == "" {
		pattern = "{topic}-{date}"
	}
	glob := strings.NewReplacer("{topic}", "*", "{date}", "*").Replace(pattern)
	tmpl := map[string]any{
		"index_patterns": []string{glob},
		"priority":       100,
		"template": map[string]any{
			"mappings": map[string]any{
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"message":    map[string]any{"type": "text"},
					"host":       map[string]any{"properties": map[string]any{"name": map[string]any{"type": "keyword"}}},
					"log": map[string]any{"properties": map[string]any{
						"file":   map[string]any{"properties": map[string]any{"path": map[string]any{"type": "keyword"}}},
						"offset": map[string]any{"type": "long"},
					}},
					"kafka": map[string]any{"properties": map[string]any{
						"topic":     map[string]any{"type": "keyword"},
						"partition": map[string]any{"type": "integer"},
						"offset":    map[string]any{"type": "long"},
						"timestamp": map[string]any{"type": "long"}, // the record's, when @timestamp replaced it
					}},
				},
			},
		},
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e.c.IndexPutIndexTemplate("logpipe").BodyJson(tmpl).Do(tctx); err != nil {
		return fmt.Errorf("install index template for %s: %w", glob, err)
	}
	return nil
}

// Write sends docs in one bulk request. The NDJSON body is built here in one pass
// (olivere's BulkService would marshal every document twice), and sent with the
// client's transport, authentication and TLS. A document that is not one line is
// never sent (it would split into several NDJSON lines, one of which could pose as an
// action): it is rejected, so that it goes to the dead-letter topic.
func (e *ES) Write(ctx context.Context, docs []document.Doc) ([]Result, error) {
	results := make([]Result, len(docs))
	sent := make([]int, 0, len(docs)) // indexes in docs of the documents in the body
	n := 0
	for i, d := range docs {
		if !OneLine(d.Body) {
			results[i] = Result{Outcome: Reject, Status: 400, Error: "logpipe: document is not one line of JSON"}
			continue
		}
		sent = append(sent, i)
		n += len(d.Body) + len(d.Index) + len(d.ID) + 40
	}
	if len(sent) == 0 {
		return results, nil
	}
	// A strings.Builder hands its bytes over as the request body without a copy.
	var body strings.Builder
	body.Grow(n)
	for _, i := range sent {
		d := docs[i]
		body.WriteString(`{"index":{"_index":`)
		writeQuoted(&body, d.Index)
		body.WriteString(`,"_id":`)
		writeQuoted(&body, d.ID)
		body.WriteString("}}\n")
		body.Write(d.Body)
		body.WriteByte('\n')
	}
	resp, err := e.c.PerformRequest(ctx, elastic.PerformRequestOptions{
		Method: "POST", Path: "/_bulk", Body: body.String(), ContentType: "application/x-ndjson",
	})
	if err != nil {
		return nil, fmt.Errorf("bulk request of %d documents: %w", len(sent), err)
	}
	// Most responses say no item failed: then the items need not be decoded, only
	// counted (each has one "status").
	failed, err := bulkErrors(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bulk response: %w", err)
	}
	if !failed {
		if n := bytes.Count(resp.Body, []byte(`"status"`)); n != len(sent) {
			return nil, fmt.Errorf("bulk response has %d items for %d documents", n, len(sent))
		}
		for _, i := range sent {
			results[i] = Result{Outcome: Stored, Status: 200}
		}
		return results, nil
	}
	var br bulkResponse
	if err := json.Unmarshal(resp.Body, &br); err != nil {
		return nil, fmt.Errorf("bulk response: %w", err)
	}
	if len(br.Items) != len(sent) {
		return nil, fmt.Errorf("bulk response has %d items for %d documents", len(br.Items), len(sent))
	}
	for k, item := range br.Items {
		i := sent[k]
		for _, r := range item {
			results[i] = Result{Outcome: classify(r.Status), Status: r.Status}
			if r.Error != nil {
				results[i].Error = r.Error.Type + ": " + r.Error.Reason
			}
		}
	}
	return results, nil
}

// OneLine reports whether a document body can be one NDJSON line: no raw line feed
// or carriage return (Elasticsearch splits a bulk body on either).
func OneLine(body []byte) bool {
	return bytes.IndexByte(body, '\n') < 0 && bytes.IndexByte(body, '\r') < 0
}

// bulkErrors reads the top-level "errors" flag of a _bulk response, stopping there
// (Elasticsearch writes it before the items).
func bulkErrors(body []byte) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false, fmt.Errorf("not a JSON object: %.80q", body)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false, err
		}
		if key == "errors" {
			var failed bool
			if err := dec.Decode(&failed); err != nil {
				return false, fmt.Errorf("errors: %w", err)
			}
			return failed, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false, err
		}
	}
	return false, errors.New(`no "errors" field`)
}

// writeQuoted writes s as a JSON string. Index names and ids need no escaping, but
// an odd index pattern must not break the request.
func writeQuoted(b *strings.Builder, s string) {
	if strings.ContainsAny(s, "\"\\") || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 }) >= 0 {
		q, _ := json.Marshal(s)
		b.Write(q)
		return
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// bulkResponse is the part of a _bulk response the sink reads.
type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		Status int `json:"status"`
		Error  *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	} `json:"items"`
}

// Close releases the client and its idle connections.
func (e *ES) Close() error {
	e.c.Stop()
	e.tr.CloseIdleConnections()
	return nil
}
