package estest

import (
	"fmt"
	"strings"
	"testing"
)

// TestMappings: an index takes its template's mapping and grows dynamically; a
// document that does not fit is refused with 400 mapper_parsing_exception and adds
// nothing to the mapping.
func TestMappings(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := do(t, "PUT", s.URL()+"/_index_template/t", `{"index_patterns":["web-*"],"priority":200,"template":{"mappings":{"properties":{
		"host":{"properties":{"name":{"type":"keyword"}}},
		"http":{"properties":{"response":{"properties":{"status_code":{"type":"long"}}}}},
		"source":{"properties":{"ip":{"type":"ip"}}},
		"@timestamp":{"type":"date"}}}}}`)
	if st != 200 {
		t.Fatalf("template: %d", st)
	}
	for i, c := range []struct {
		doc    string
		status float64
		reason string
	}{
		{`{"@timestamp":"2026-12-04T21:13:00.123Z","host":{"name":"web-1"},"http":{"response":{"status_code":404}},"source":{"ip":"2001:db8::1"}}`, 201, ""},
		{`{"http.response.status_code":"200","source.ip":"10.0.0.1"}`, 201, ""}, // dotted names, a coerced number
		{`{"http":{"response":{"status_code":"abc"}}}`, 400, "failed to parse field [http.response.status_code] of type [long]"},
		{`{"source":{"ip":"localhost"}}`, 400, "is not an IP string literal"},
		{`{"host":"web-1"}`, 400, "object mapping for [host] tried to parse field [host] as object, but found a concrete value"},
		{`{"host":{"name":{"first":"x"}}}`, 400, "found an object"},
		{`{"@timestamp":"yesterday"}`, 400, "failed to parse date field"},
		{`{"level":"info","count":3}`, 201, ""}, // dynamic: keyword, long
		{`{"count":"many"}`, 400, "[count] of type [long]"},
		{`{"level":{"x":1}}`, 400, "found an object"},
		{`{"a.":1}`, 400, "only whitespace or dots"},
		{`{"fresh":{"x":1},"fresh2":"y"}`, 201, ""},
	} {
		body := fmt.Sprintf("{\"index\":{\"_index\":\"web-1\",\"_id\":\"%d\"}}\n%s\n", i, c.doc)
		_, resp := do(t, "POST", s.URL()+"/_bulk", body)
		item := resp["items"].([]any)[0].(map[string]any)["index"].(map[string]any)
		if item["status"] != c.status {
			t.Errorf("%s: status %v, want %v (%v)", c.doc, item["status"], c.status, item["error"])
			continue
		}
		if c.reason != "" {
			e := item["error"].(map[string]any)
			if e["type"] != "mapper_parsing_exception" || !strings.Contains(e["reason"].(string), c.reason) {
				t.Errorf("%s: error %v, want %q", c.doc, e, c.reason)
			}
		}
	}
	m := s.Mapping("web-1")
	for name, typ := range map[string]string{"host.name": "keyword", "http.response.status_code": "long", "source.ip": "ip",
		"level": "keyword", "count": "long", "fresh.x": "long", "fresh2": "keyword"} {
		if m[name] != typ {
			t.Errorf("mapping %s = %q, want %q (%v)", name, m[name], typ, m)
		}
	}
	if _, ok := m["a"]; ok {
		t.Error("a refused document changed the mapping")
	}

	// Elasticsearch's limit of 1,000 fields in an index.
	var b strings.Builder
	b.WriteString(`{"index":{"_index":"web-2","_id":"wide"}}` + "\n{")
	for i := range totalFieldsLimit + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d":1`, i)
	}
	b.WriteString("}\n")
	_, resp := do(t, "POST", s.URL()+"/_bulk", b.String())
	item := resp["items"].([]any)[0].(map[string]any)["index"].(map[string]any)
	if item["status"] != 400.0 || !strings.Contains(item["error"].(map[string]any)["reason"].(string), "Limit of total fields [1000]") {
		t.Fatalf("wide document: %v", item)
	}
}
