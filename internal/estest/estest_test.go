package estest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
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

func TestFlavors(t *testing.T) {
	for _, f := range []Flavor{Elasticsearch7, Elasticsearch8, OpenSearch2, Elasticsearch77} {
		t.Run(f.String(), func(t *testing.T) {
			s, err := StartFlavor(f)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			resp, err := http.Get(s.URL() + "/")
			if err != nil {
				t.Fatal(err)
			}
			var root struct {
				Version struct{ Number, Distribution string }
			}
			json.NewDecoder(resp.Body).Decode(&root)
			resp.Body.Close()
			hdr := resp.Header.Get("X-Elastic-Product")
			if root.Version.Number != f.Version || (f.Distribution == "opensearch") != (root.Version.Distribution == "opensearch") ||
				(hdr == "Elasticsearch") != (f == Elasticsearch7 || f == Elasticsearch8) {
				t.Fatalf("root %+v, header %q", root, hdr)
			}
			// Typed bulk: 7.x takes it, 8 and OpenSearch 2 refuse it.
			st, _ := do(t, "POST", s.URL()+"/_bulk", `{"index":{"_index":"a","_type":"_doc","_id":"1"}}`+"\n{}\n")
			if want := map[bool]int{true: 200, false: 400}[f.acceptsTypes()]; st != want {
				t.Fatalf("typed bulk: %d, want %d", st, want)
			}
			// Lifecycle: ILM on Elasticsearch, ISM on OpenSearch.
			st, _ = do(t, "PUT", s.URL()+"/_ilm/policy/p", `{"policy":{"phases":{"delete":{"min_age":"7d","actions":{"delete":{}}}}}}`)
			st2, _ := do(t, "PUT", s.URL()+"/_plugins/_ism/policies/p", `{"policy":{"states":[{"name":"hot"}]}}`)
			if f.openSearch() != (st == 400 && st2 == 201) {
				t.Fatalf("ilm %d, ism %d", st, st2)
			}
			if f.openSearch() {
				if st, _ := do(t, "PUT", s.URL()+"/_plugins/_ism/policies/p", `{"policy":{"states":[{"name":"hot"}]}}`); st != 409 {
					t.Fatalf("ISM update without seq_no: %d", st)
				}
				if st, _ := do(t, "PUT", s.URL()+"/_plugins/_ism/policies/p?if_seq_no=0&if_primary_term=1", `{"policy":{"states":[{"name":"hot"}]}}`); st != 200 {
					t.Fatalf("ISM update with seq_no: %d", st)
				}
			}
			st, _ = do(t, "PUT", s.URL()+"/_index_template/t", `{"index_patterns":["x-*"],"priority":5}`)
			if f.composable() != (st == 200) {
				t.Fatalf("composable template: %d", st)
			}
		})
	}
}

func TestDataStreams(t *testing.T) {
	s, err := StartFlavor(Elasticsearch8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The built-in logs template (logs-*-*, 100) refuses an overlapping template of the same priority.
	if st, _ := do(t, "PUT", s.URL()+"/_index_template/mine", `{"index_patterns":["*-*"],"priority":100}`); st != 400 {
		t.Fatalf("same-priority overlap: %d", st)
	}
	if st, _ := do(t, "PUT", s.URL()+"/_index_template/mine", `{"index_patterns":["logs-*-default"],"priority":200,"data_stream":{}}`); st != 200 {
		t.Fatalf("template: %d", st)
	}
	bulk := `{"create":{"_index":"logs-web-default","_id":"a"}}
{"@timestamp":"2026-11-22T12:00:00Z","message":"one"}
{"index":{"_index":"logs-web-default","_id":"b"}}
{"@timestamp":"2026-11-22T12:00:00Z","message":"two"}
{"create":{"_index":"logs-web-default","_id":"a"}}
{"@timestamp":"2026-11-22T12:00:00Z","message":"one again"}
{"create":{"_index":"logs-web-default","_id":"c"}}
{"message":"no timestamp"}
`
	_, m := do(t, "POST", s.URL()+"/_bulk", bulk)
	items := m["items"].([]any)
	var got []float64
	for _, it := range items {
		for _, r := range it.(map[string]any) {
			got = append(got, r.(map[string]any)["status"].(float64))
		}
	}
	if fmt.Sprint(got) != "[201 400 409 400]" || s.Count("logs-web-default") != 1 || s.Conflicts.Load() != 1 {
		t.Fatalf("statuses %v, %d docs", got, s.Count("logs-web-default"))
	}
	if ds := s.DataStreams(); len(ds) != 1 || ds[0] != "logs-web-default" {
		t.Fatalf("data streams %v", ds)
	}
	// After a rollover the same _id is stored again, in the new write index.
	if st, _ := do(t, "POST", s.URL()+"/logs-web-default/_rollover", ""); st != 200 {
		t.Fatal("rollover", st)
	}
	do(t, "POST", s.URL()+"/_bulk", `{"create":{"_index":"logs-web-default","_id":"a"}}`+"\n"+`{"@timestamp":"2026-11-22T12:00:00Z"}`+"\n")
	if s.Count("logs-web-default") != 2 {
		t.Fatalf("%d docs after rollover", s.Count("logs-web-default"))
	}
}

func TestAuth(t *testing.T) {
	s, err := StartFlavor(Elasticsearch8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetAuth(Auth{Username: "elastic", Password: "pw", APIKey: "a2V5OnNlY3JldA=="})
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Basic ZWxhc3RpYzpwdw==", 200}, {"Basic ZWxhc3RpYzp4", 401}, {"ApiKey a2V5OnNlY3JldA==", 200}, {"ApiKey bad", 401}} {
		req, _ := http.NewRequest("GET", s.URL()+"/", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("%q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
}

// TestBulkMalformedAction: an action line that is not one of index, create, delete
// and update fails the whole request, as Elasticsearch answers it.
func TestBulkMalformedAction(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, line := range []string{`{"upsert":{"_index":"a","_id":"1"}}`, `{"index":{"_index":"a"},"create":{"_index":"a"}}`, `[1]`} {
		st, resp := do(t, "POST", s.URL()+"/_bulk", line+"\n{}\n")
		if st != 400 || resp["error"] == nil {
			t.Fatalf("%s: %d %v", line, st, resp)
		}
	}
	if n := s.Count("*"); n != 0 {
		t.Fatalf("%d documents stored", n)
	}
}

// TestFastObserve: in fast mode nothing is stored, and the observer sees each
// document once with the time it was indexed.
func TestFastObserve(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var seen []string
	s.SetFast(true, func(src []byte, at time.Time) {
		if at.IsZero() {
			t.Error("zero time")
		}
		seen = append(seen, string(src))
	})
	st, resp := do(t, "POST", s.URL()+"/_bulk", `{"index":{"_index":"a","_id":"1"}}`+"\n"+`{"n":1}`+"\n"+`{"create":{"_index":"a","_id":"2"}}`+"\n"+`{"n":2}`+"\n")
	if st != 200 || resp["errors"] != false || len(resp["items"].([]any)) != 2 {
		t.Fatalf("%d %v", st, resp)
	}
	if fmt.Sprint(seen) != `[{"n":1} {"n":2}]` || s.Count("*") != 0 {
		t.Fatalf("observed %q, %d stored", seen, s.Count("*"))
	}
}
