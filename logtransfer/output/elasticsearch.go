package output

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/logpipe/logpipe/internal/tlsconfig"
	"github.com/logpipe/logpipe/logtransfer/document"
	"github.com/olivere/elastic/v7"
)

// ESConfig configures the Elasticsearch sink.
type ESConfig struct {
	URLs     []string
	Username string
	Password string // read from a file by the caller when configured so
	// APIKey is sent as "Authorization: ApiKey <APIKey>": the encoded key
	// (base64 of id:key) that Elasticsearch prints, or id:key, encoded here.
	APIKey            string
	CAFile            string // PEM bundle to trust, for https
	CertFile, KeyFile string // client certificate (PKI realm / mutual TLS)
	Insecure          bool   // skip certificate verification (explicit opt-in)
	Sniff             bool   // discover nodes; off by default (wrong behind docker/NAT)
	IndexPattern      string // for the index template, e.g. {topic}-{date}
	// DataStream writes with create actions into data streams named by IndexPattern
	// (e.g. logs-{topic}-default), whose template enables data_stream; a 409 for an
	// existing _id counts as stored.
	DataStream bool
	Template   bool // install the index template at start
	// Fields are the parsed fields the template maps besides logpipe's own: dotted
	// name -> Elasticsearch type (keyword, long, ip, date, text, ...).
	Fields map[string]string
	// RetentionDays > 0 installs a lifecycle policy (ILM, or ISM on OpenSearch) that
	// deletes data after that many days, attached through the template; with
	// RetentionDelete the caller deletes expired daily indices itself instead.
	RetentionDays   int
	RetentionDelete bool
	Timeout         time.Duration
	// Warn logs a problem the sink works around (nil: none).
	Warn func(msg string, args ...any)
}

func (c ESConfig) pattern() string {
	if c.IndexPattern == "" {
		if c.DataStream {
			return "logs-{dataset}-default"
		}
		return "{topic}-{date}"
	}
	return c.IndexPattern
}

// ES is the Elasticsearch sink, using bulk requests.
type ES struct {
	c      *elastic.Client
	tr     *http.Transport
	action string // "index", or "create" into data streams
	// Cluster is what the cluster said it is at start.
	Cluster Cluster
}

// NewES connects to Elasticsearch, reads what the cluster is (GET /, retried until
// it answers or ctx ends; an unsupported cluster is an error), and installs the
// lifecycle policy and the index template as configured.
func NewES(ctx context.Context, cfg ESConfig) (*ES, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if cfg.CAFile != "" || cfg.Insecure || cfg.CertFile != "" || cfg.KeyFile != "" {
		tc, err := tlsconfig.Client(tlsconfig.ClientOptions{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, InsecureSkipVerify: cfg.Insecure})
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	var rt http.RoundTripper = tr
	if cfg.APIKey != "" {
		if cfg.Username != "" {
			return nil, errors.New("elasticsearch: set api_key or username, not both")
		}
		rt = apiKeyTransport{next: tr, header: "ApiKey " + encodeAPIKey(cfg.APIKey)}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	opts := []elastic.ClientOptionFunc{
		elastic.SetURL(cfg.URLs...),
		elastic.SetSniff(cfg.Sniff),
		elastic.SetHealthcheck(false),
		elastic.SetHttpClient(&http.Client{Transport: rt, Timeout: timeout}),
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
	es := &ES{c: c, tr: tr, action: "index"}
	if cfg.DataStream {
		es.action = "create"
	}
	if es.Cluster, err = es.detect(ctx, cfg.Warn); err != nil {
		es.Close()
		return nil, err
	}
	if cfg.DataStream && !es.Cluster.DataStreams() {
		es.Close()
		return nil, fmt.Errorf("[es] mode = data_stream: %s has no data streams (Elasticsearch 7.9+ or OpenSearch); use mode = index", es.Cluster)
	}
	if err := es.setup(ctx, cfg); err != nil {
		es.Close()
		return nil, err
	}
	return es, nil
}

// apiKeyTransport adds the Authorization header of an API key to every request.
type apiKeyTransport struct {
	next   http.RoundTripper
	header string
}

func (t apiKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", t.header)
	return t.next.RoundTrip(r)
}

// encodeAPIKey returns the encoded form of an API key: given as id:key it is
// base64-encoded; the encoded form (what Elasticsearch prints) is kept.
func encodeAPIKey(k string) string {
	k = strings.TrimSpace(k)
	if strings.Contains(k, ":") {
		return base64.StdEncoding.EncodeToString([]byte(k))
	}
	return k
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
		body.WriteString(`{"`)
		body.WriteString(e.action)
		body.WriteString(`":{"_index":`)
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
			// create answers 409 when the _id is in the write index already: with
			// logpipe's deterministic ids that is this very line, indexed before.
			if e.action == "create" && r.Status == http.StatusConflict && r.Error != nil && r.Error.Type == "version_conflict_engine_exception" {
				results[i] = Result{Outcome: Stored, Status: r.Status, Existed: true}
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
