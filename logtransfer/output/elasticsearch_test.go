package output

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/logtransfer/document"
)

func docs(n int) []document.Doc {
	out := make([]document.Doc, n)
	for i := range out {
		out[i] = document.Doc{Index: "web_log-2026.11.22", ID: fmt.Sprintf("id-%d", i), Body: []byte(fmt.Sprintf(`{"message":"line %d"}`, i))}
	}
	return out
}

func newSink(t *testing.T) (*ES, *estest.Server) {
	t.Helper()
	srv, err := estest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	es, err := NewES(context.Background(), ESConfig{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	return es, srv
}

// TestWriteOutcomes: every item stored (the fast path), then items answered 429, 400
// and 404 among stored ones, then a whole request refused.
func TestWriteOutcomes(t *testing.T) {
	es, srv := newSink(t)
	res, err := es.Write(context.Background(), docs(50))
	if err != nil || len(res) != 50 || srv.Count("*") != 50 {
		t.Fatalf("all stored: %v, %d results, %d docs", err, len(res), srv.Count("*"))
	}
	for _, r := range res {
		if r.Outcome != Stored {
			t.Fatalf("result %+v", r)
		}
	}
	srv.SetItemRule(func(it estest.Item) int {
		switch it.ID {
		case "id-3":
			return 429
		case "id-7":
			return 400
		case "id-8":
			return 404
		}
		return 0
	})
	res, err = es.Write(context.Background(), docs(10))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]Outcome{3: Retry, 7: Reject, 8: Reject}
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Fatalf("item %d: %+v, want outcome %d", i, r, want[i])
		}
		if r.Outcome != Stored && (r.Error == "" || r.Status < 400) {
			t.Fatalf("item %d: no status or reason: %+v", i, r)
		}
	}
	srv.SetItemRule(nil)
	srv.SetRequestRule(func() int { return 503 })
	if _, err := es.Write(context.Background(), docs(3)); err == nil {
		t.Fatal("a 503 for the whole request was not an error")
	}
}

// TestBulkErrorsFlag reads the flag wherever it sits, and refuses what is not a bulk
// response.
func TestBulkErrorsFlag(t *testing.T) {
	for body, want := range map[string]bool{
		`{"took":3,"errors":false,"items":[]}`:                              false,
		`{"took":3,"errors":true,"items":[{"index":{"status":429}}]}`:       true,
		`{"items":[{"index":{"status":201,"errors":true}}],"errors":false}`: false,
	} {
		got, err := bulkErrors([]byte(body))
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", body, got, err, want)
		}
	}
	for _, body := range []string{``, `[]`, `{"took":1}`, `<html>502 Bad Gateway</html>`, `{"errors":"no"}`} {
		if _, err := bulkErrors([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

// TestWriteQuoted keeps ordinary names as they are and escapes odd ones as JSON.
func TestWriteQuoted(t *testing.T) {
	for in, want := range map[string]string{"web_log-2026.11.22": `"web_log-2026.11.22"`, `a"b`: `"a\"b"`, "a\x01": `"a\u0001"`} {
		var b strings.Builder
		writeQuoted(&b, in)
		if b.String() != want {
			t.Errorf("%q: %s, want %s", in, b.String(), want)
		}
	}
}

// TestMultiLineDocumentNeverSent: a body with a raw newline would be two NDJSON lines
// (the second could pose as an action): it is rejected and the others are stored,
// each result in its place.
func TestMultiLineDocumentNeverSent(t *testing.T) {
	es, srv := newSink(t)
	ds := docs(5)
	ds[1].Body = []byte("{\"message\":1}\n{\"index\":{\"_index\":\"victim\"}}")
	ds[3].Body = []byte("{\"message\":\r3}")
	res, err := es.Write(context.Background(), ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := map[bool]Outcome{true: Reject, false: Stored}[i == 1 || i == 3]; r.Outcome != want {
			t.Fatalf("document %d: %+v", i, r)
		}
	}
	if srv.Count("*") != 3 || srv.Count("victim") != 0 {
		t.Fatalf("%d stored, %d in victim", srv.Count("*"), srv.Count("victim"))
	}
	f, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res, err := f.Write(context.Background(), ds); err != nil || res[1].Outcome != Reject || res[0].Outcome != Stored {
		t.Fatalf("file sink: %+v %v", res, err)
	}
}
