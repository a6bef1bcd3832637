package estest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestBulkContract(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bulk := `{"index":{"_index":"web-2026.11.22","_id":"a"}}
{"message":"one"}
{"create":{"_index":"web-2026.11.22","_id":"b"}}
{"message":"two"}
{"index":{"_index":"web-2026.11.22","_id":"a"}}
{"message":"one again"}
{"create":{"_index":"web-2026.11.22","_id":"b"}}
{"message":"dup"}
{"index":{"_index":"web-2026.11.22","_id":"c"}}
{not json}
{"delete":{"_index":"web-2026.11.22","_id":"zzz"}}
`
	st, resp := do(t, "POST", s.URL()+"/_bulk", bulk)
	if st != 200 || resp["errors"] != true {
		t.Fatalf("%d %v", st, resp)
	}
	items := resp["items"].([]any)
	statuses := []float64{}
	for _, it := range items {
		for _, v := range it.(map[string]any) {
			statuses = append(statuses, v.(map[string]any)["status"].(float64))
		}
	}
	if want := []float64{201, 201, 200, 409, 400, 404}; len(statuses) != len(want) {
		t.Fatalf("statuses %v", statuses)
	} else {
		for i := range want {
			if statuses[i] != want[i] {
				t.Fatalf("statuses %v, want %v", statuses, want)
			}
		}
	}
	if s.Count("web-*") != 2 || s.Overwrites.Load() != 1 {
		t.Fatalf("count %d overwrites %d", s.Count("web-*"), s.Overwrites.Load())
	}
	if _, c := do(t, "GET", s.URL()+"/web-*/_count", ""); c["count"].(float64) != 2 {
		t.Fatalf("_count %v", c)
	}
	_, sr := do(t, "POST", s.URL()+"/web-*/_search", `{"query":{"ids":{"values":["a"]}}}`)
	hits := sr["hits"].(map[string]any)["hits"].([]any)
	if len(hits) != 1 || hits[0].(map[string]any)["_source"].(map[string]any)["message"] != "one again" {
		t.Fatalf("search %v", sr)
	}

	s.SetItemRule(func(it Item) int {
		if it.ID == "x" {
			return 429
		}
		return 0
	})
	_, resp = do(t, "POST", s.URL()+"/_bulk", `{"index":{"_index":"w","_id":"x"}}
{"m":1}
{"index":{"_index":"w","_id":"y"}}
{"m":2}
`)
	first := resp["items"].([]any)[0].(map[string]any)["index"].(map[string]any)
	if first["status"].(float64) != 429 || first["error"].(map[string]any)["type"] != "es_rejected_execution_exception" || s.Count("w") != 1 {
		t.Fatalf("item rule: %v, count %d", resp, s.Count("w"))
	}
	s.SetItemRule(nil)
	s.SetRequestRule(func() int { return 503 })
	if st, _ := do(t, "POST", s.URL()+"/_bulk", `{"index":{"_index":"w","_id":"z"}}`+"\n{}\n"); st != 503 {
		t.Fatalf("request rule: %d", st)
	}
	s.SetRequestRule(nil)
	s.Down()
	if _, err := http.Post(s.URL()+"/_bulk", "application/x-ndjson", strings.NewReader("")); err == nil {
		t.Fatal("down server answered")
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if st, _ := do(t, "GET", s.URL()+"/", ""); st != 200 {
		t.Fatalf("after Up: %d", st)
	}
	if st, _ := do(t, "PUT", s.URL()+"/_index_template/logpipe", `{"index_patterns":["*-*"]}`); st != 200 || len(s.Templates()) != 1 {
		t.Fatalf("template: %d", st)
	}
}
