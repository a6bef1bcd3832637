package output

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/olivere/elastic/v7"
)

// Cluster is what GET / says about the cluster.
type Cluster struct {
	Distribution string // "elasticsearch" or "opensearch"
	Version      string // version.number
	Major, Minor int
}

// String is "elasticsearch 8.15.3".
func (c Cluster) String() string { return c.Distribution + " " + c.Version }

// OpenSearch reports an OpenSearch cluster.
func (c Cluster) OpenSearch() bool { return c.Distribution == "opensearch" }

func (c Cluster) atLeast(major, minor int) bool {
	return c.Major > major || (c.Major == major && c.Minor >= minor)
}

// Composable reports whether the cluster has composable templates (_index_template):
// Elasticsearch 7.8+ and every OpenSearch.
func (c Cluster) Composable() bool { return c.OpenSearch() || c.atLeast(7, 8) }

// DataStreams reports whether the cluster has data streams: Elasticsearch 7.9+ and
// every OpenSearch.
func (c Cluster) DataStreams() bool { return c.OpenSearch() || c.atLeast(7, 9) }

// ErrUnsupported is wrapped by the error of a cluster logpipe does not support.
var ErrUnsupported = errors.New("unsupported cluster")

// ParseCluster reads the answer of GET / and its X-Elastic-Product header, and
// refuses what logpipe does not support: Elasticsearch before 7 (mapping types) or
// from 10, OpenSearch before 1 or from 4, anything else, and an Elasticsearch 7.14+
// answer without the product header (not Elasticsearch, or a proxy that rewrites it).
func ParseCluster(body []byte, productHeader string) (Cluster, error) {
	var root struct {
		Version *struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
		Tagline string `json:"tagline"`
	}
	if err := json.Unmarshal(body, &root); err != nil || root.Version == nil || root.Version.Number == "" {
		return Cluster{}, fmt.Errorf("%w: GET / does not answer version.number, so this is not Elasticsearch or OpenSearch: %.120q", ErrUnsupported, body)
	}
	c := Cluster{Distribution: "elasticsearch", Version: root.Version.Number}
	if root.Version.Distribution != "" {
		c.Distribution = strings.ToLower(root.Version.Distribution)
	}
	parts := strings.SplitN(c.Version, ".", 3)
	var err1, err2 error
	c.Major, err1 = strconv.Atoi(parts[0])
	if len(parts) > 1 {
		c.Minor, err2 = strconv.Atoi(parts[1])
	}
	if err1 != nil || err2 != nil {
		return c, fmt.Errorf("%w: version %q is not major.minor.patch", ErrUnsupported, c.Version)
	}
	const want = "logpipe supports Elasticsearch 7.x (7.17 recommended), 8.x and 9.x, and OpenSearch 1.x to 3.x (2.x recommended)"
	switch c.Distribution {
	case "elasticsearch":
		if c.Major < 7 || c.Major > 9 {
			return c, fmt.Errorf("%w: %s; %s", ErrUnsupported, c, want)
		}
		if c.atLeast(7, 14) && productHeader != "Elasticsearch" {
			return c, fmt.Errorf("%w: the cluster says it is %s but sends no \"X-Elastic-Product: Elasticsearch\" header, as every Elasticsearch since 7.14 does: not Elasticsearch, or a proxy drops the header", ErrUnsupported, c)
		}
	case "opensearch":
		if c.Major < 1 || c.Major > 3 {
			return c, fmt.Errorf("%w: %s; %s", ErrUnsupported, c, want)
		}
	default:
		return c, fmt.Errorf("%w: distribution %q (version %s); %s", ErrUnsupported, c.Distribution, c.Version, want)
	}
	return c, nil
}

// detect asks the cluster what it is, retrying while it cannot be reached, until ctx
// ends; an answer that is not a supported cluster is an error at once.
func (e *ES) detect(ctx context.Context, warn func(msg string, args ...any)) (Cluster, error) {
	backoff := 250 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := e.c.PerformRequest(rctx, elastic.PerformRequestOptions{Method: "GET", Path: "/"})
		cancel()
		if err == nil {
			return ParseCluster(resp.Body, resp.Header.Get("X-Elastic-Product"))
		}
		var ee *elastic.Error
		if errors.As(err, &ee) && (ee.Status == http.StatusUnauthorized || ee.Status == http.StatusForbidden) {
			return Cluster{}, fmt.Errorf("elasticsearch refused the credentials (%d): check [es] username/password, api_key or cert_file", ee.Status)
		}
		if ctx.Err() != nil {
			return Cluster{}, fmt.Errorf("elasticsearch: GET /: %w", err)
		}
		if warn != nil {
			warn("elasticsearch unreachable at start; retrying", "err", firstLine(err), "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return Cluster{}, fmt.Errorf("elasticsearch: GET /: %w", err)
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// Glob turns an index or data stream pattern with {topic}, {dataset} and {date} into
// an index pattern: logs-{dataset}-default becomes logs-*-default.
func Glob(pattern string) string {
	return strings.NewReplacer("{topic}", "*", "{dataset}", "*", "{date}", "*").Replace(pattern)
}

// ownFields are the Elasticsearch types of the fields logpipe itself writes.
var ownFields = map[string]string{
	"@timestamp": "date", "message": "text", "host.name": "keyword", "log.file.path": "keyword", "log.offset": "long",
	"log.iostream": "keyword", "event.created": "date", "event.ingested": "date", "event.dataset": "keyword",
	"event.timezone": "keyword", "data_stream.dataset": "keyword", "tags": "keyword", "error.message": "text",
	"kafka.topic": "keyword", "kafka.partition": "integer", "kafka.offset": "long",
	"kafka.timestamp":     "long", // the record's, when @timestamp replaced it
	"kubernetes.pod.name": "keyword", "kubernetes.namespace": "keyword", "container.name": "keyword", "container.id": "keyword",
}

// mappings are the ECS types of the fields logpipe writes and of the parsed fields
// (dotted name -> type), as nested properties. A parsed field never changes the type
// of one of logpipe's own.
func mappings(parsed map[string]string, openSearch bool) map[string]any {
	root := map[string]any{}
	put := func(name, typ string) {
		if typ == "flattened" && openSearch {
			typ = "object" // OpenSearch has no flattened type (2.7+ has flat_object, 1.x neither)
		}
		props := root
		parts := strings.Split(name, ".")
		for _, p := range parts[:len(parts)-1] {
			obj, ok := props[p].(map[string]any)
			if !ok || obj["properties"] == nil {
				if ok {
					return // a value already has this name
				}
				obj = map[string]any{"properties": map[string]any{}}
				props[p] = obj
			}
			props = obj["properties"].(map[string]any)
		}
		if _, ok := props[parts[len(parts)-1]]; ok {
			return
		}
		props[parts[len(parts)-1]] = map[string]any{"type": typ}
	}
	for _, fields := range []map[string]string{ownFields, parsed} {
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			put(n, fields[n])
		}
	}
	return map[string]any{"properties": root}
}

// PolicyName is the name of logpipe's lifecycle policy (ILM or ISM).
const PolicyName = "logpipe"

// templatePriority is above the 100 of Elasticsearch's built-in logs template
// (logs-*-*): composable templates that overlap must not share a priority.
const templatePriority = 200

// setup installs the lifecycle policy (when retention is set) and the template.
func (e *ES) setup(ctx context.Context, cfg ESConfig) error {
	glob := Glob(cfg.pattern())
	ilm := false
	if cfg.RetentionDays > 0 && !cfg.RetentionDelete {
		if err := e.installPolicy(ctx, cfg, glob); err != nil {
			return err
		}
		ilm = !e.Cluster.OpenSearch()
	}
	if !cfg.Template {
		return nil
	}
	settings := map[string]any{}
	if ilm {
		settings["index.lifecycle.name"] = PolicyName
	}
	if e.Cluster.Composable() {
		tmpl := map[string]any{
			"index_patterns": []string{glob},
			"priority":       templatePriority,
			"template":       map[string]any{"settings": settings, "mappings": mappings(cfg.Fields, e.Cluster.OpenSearch())},
			"_meta":          map[string]any{"managed_by": "logpipe"},
		}
		if cfg.DataStream {
			tmpl["data_stream"] = map[string]any{}
		}
		if _, err := e.put(ctx, "/_index_template/logpipe", tmpl); err != nil {
			return fmt.Errorf("install index template for %s: %w", glob, err)
		}
		return nil
	}
	// Elasticsearch before 7.8: the legacy API.
	tmpl := map[string]any{"index_patterns": []string{glob}, "order": 1, "settings": settings, "mappings": mappings(cfg.Fields, e.Cluster.OpenSearch())}
	if _, err := e.put(ctx, "/_template/logpipe", tmpl); err != nil {
		return fmt.Errorf("install legacy index template for %s: %w", glob, err)
	}
	return nil
}

// installPolicy puts the lifecycle policy: ILM on Elasticsearch, ISM on OpenSearch.
// Data streams roll over daily (or at 50 GB a primary shard) and their backing
// indices are deleted RetentionDays after the rollover; daily indices are deleted
// RetentionDays after their creation.
func (e *ES) installPolicy(ctx context.Context, cfg ESConfig, glob string) error {
	age := strconv.Itoa(cfg.RetentionDays) + "d"
	noEngine := func(err error) error {
		var ee *elastic.Error
		if errors.As(err, &ee) && (ee.Status == 400 || ee.Status == 404 || ee.Status == 405) {
			return fmt.Errorf("[es] retention_days = %d: %s has no lifecycle engine (%s: %w); install it, or set retention_delete = true for logpipe to delete its own expired daily indices, or retention_days = 0",
				cfg.RetentionDays, e.Cluster, map[bool]string{true: "ISM plugin", false: "ILM"}[e.Cluster.OpenSearch()], err)
		}
		return fmt.Errorf("install lifecycle policy: %w", err)
	}
	if !e.Cluster.OpenSearch() {
		hot := map[string]any{}
		if cfg.DataStream {
			rollover := map[string]any{"max_age": "1d"}
			if e.Cluster.atLeast(7, 13) {
				rollover["max_primary_shard_size"] = "50gb"
			} else {
				rollover["max_size"] = "50gb"
			}
			hot["rollover"] = rollover
		}
		policy := map[string]any{"policy": map[string]any{
			"_meta": map[string]any{"managed_by": "logpipe"},
			"phases": map[string]any{
				"hot":    map[string]any{"min_age": "0ms", "actions": hot},
				"delete": map[string]any{"min_age": age, "actions": map[string]any{"delete": map[string]any{}}},
			},
		}}
		if _, err := e.put(ctx, "/_ilm/policy/"+PolicyName, policy); err != nil {
			return noEngine(err)
		}
		return nil
	}
	var hotActions []any
	if cfg.DataStream {
		hotActions = append(hotActions, map[string]any{"rollover": map[string]any{"min_index_age": "1d", "min_primary_shard_size": "50gb"}})
	}
	if hotActions == nil {
		hotActions = []any{}
	}
	policy := map[string]any{"policy": map[string]any{
		"description":   "logpipe: delete after " + age,
		"default_state": "hot",
		"states": []any{
			map[string]any{"name": "hot", "actions": hotActions,
				"transitions": []any{map[string]any{"state_name": "delete", "conditions": map[string]any{"min_index_age": age}}}},
			map[string]any{"name": "delete", "actions": []any{map[string]any{"delete": map[string]any{}}}, "transitions": []any{}},
		},
		"ism_template": []any{map[string]any{"index_patterns": []string{glob}, "priority": templatePriority}},
	}}
	// An existing policy is updated only with its sequence numbers.
	p := "/_plugins/_ism/policies/" + PolicyName
	gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	resp, err := e.c.PerformRequest(gctx, elastic.PerformRequestOptions{Method: "GET", Path: p, IgnoreErrors: []int{404}})
	cancel()
	if err != nil {
		return noEngine(err)
	}
	if resp.StatusCode == 200 {
		var cur struct {
			SeqNo       *int64 `json:"_seq_no"`
			PrimaryTerm *int64 `json:"_primary_term"`
		}
		if err := json.Unmarshal(resp.Body, &cur); err != nil || cur.SeqNo == nil || cur.PrimaryTerm == nil {
			return fmt.Errorf("ISM policy %s: unexpected answer: %.200s", PolicyName, resp.Body)
		}
		p += fmt.Sprintf("?if_seq_no=%d&if_primary_term=%d", *cur.SeqNo, *cur.PrimaryTerm)
	}
	if _, err := e.put(ctx, p, policy); err != nil {
		return noEngine(err)
	}
	return nil
}

// put sends a JSON body with PUT.
func (e *ES) put(ctx context.Context, path string, body any) (*elastic.Response, error) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return e.c.PerformRequest(tctx, elastic.PerformRequestOptions{Method: "PUT", Path: path, Body: body})
}

// DeleteExpired deletes the daily indices of pattern (which must hold {date}) whose
// date is more than days before now's, and returns their names. Only names that
// pattern produces are touched; each is deleted by its name (never a wildcard).
func (e *ES) DeleteExpired(ctx context.Context, pattern string, days int, now time.Time) ([]string, error) {
	if !strings.Contains(pattern, "{date}") || days <= 0 {
		return nil, nil
	}
	re := IndexRegexp(pattern)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := e.c.PerformRequest(tctx, elastic.PerformRequestOptions{Method: "GET",
		Path: "/_cat/indices/" + Glob(pattern), Params: map[string][]string{"format": {"json"}, "h": {"index"}}})
	if err != nil {
		return nil, fmt.Errorf("list indices %s: %w", Glob(pattern), err)
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(resp.Body, &rows); err != nil {
		return nil, fmt.Errorf("list indices: %w", err)
	}
	cutoff := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	var expired []string
	for _, r := range rows {
		m := re.FindStringSubmatch(r.Index)
		if m == nil {
			continue
		}
		day, err := time.Parse("2006.01.02", m[re.SubexpIndex("date")])
		if err != nil || !day.Before(cutoff) {
			continue
		}
		expired = append(expired, r.Index)
	}
	var deleted []string
	for _, name := range expired {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := e.c.PerformRequest(dctx, elastic.PerformRequestOptions{Method: "DELETE", Path: "/" + name})
		cancel()
		if err != nil {
			return deleted, fmt.Errorf("delete expired index %s: %w", name, err)
		}
		deleted = append(deleted, name)
	}
	return deleted, nil
}

// IndexRegexp matches the names an index pattern produces, with the date in the
// group "date".
func IndexRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	rest := pattern
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		switch {
		case strings.HasPrefix(rest[i:], "{topic}"), strings.HasPrefix(rest[i:], "{dataset}"):
			b.WriteString(`[^,*?"<>|\\/ ]+`)
			rest = rest[i+strings.IndexByte(rest[i:], '}')+1:]
		case strings.HasPrefix(rest[i:], "{date}") && !strings.Contains(b.String(), "(?P<date>"):
			b.WriteString(`(?P<date>\d{4}\.\d{2}\.\d{2})`)
			rest = rest[i+len("{date}"):]
		case strings.HasPrefix(rest[i:], "{date}"):
			b.WriteString(`\d{4}\.\d{2}\.\d{2}`)
			rest = rest[i+len("{date}"):]
		default:
			b.WriteString(regexp.QuoteMeta("{"))
			rest = rest[i+1:]
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// firstLine is the first line of an error's text (olivere adds stack traces).
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
