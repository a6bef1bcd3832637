package logtransfer

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
)

// TestRetentionPolicy: retention_days installs ILM on Elasticsearch (attached by
// index.lifecycle.name in the template; data streams roll over) and ISM on
// OpenSearch (attached by its ism_template); a second start updates the ISM policy
// with its sequence numbers instead of failing.
func TestRetentionPolicy(t *testing.T) {
	for _, f := range estest.Flavors() {
		for _, mode := range []string{"index", "data_stream"} {
			t.Run(f.String()+"/"+mode, func(t *testing.T) {
				es := startFlavor(t, f)
				cfg := testConfig("127.0.0.1:1", es.URL())
				cfg.ES.Mode, cfg.ES.RetentionDays = mode, 14
				for i := 0; i < 2; i++ {
					tr, err := New(context.Background(), cfg, logging.Discard())
					if err != nil {
						t.Fatalf("start %d: %v", i+1, err)
					}
					tr.sink.Close()
				}
				policy := string(es.LifecyclePolicies()["logpipe"])
				tmpl := string(es.ComposableTemplates()["logpipe"])
				glob := map[string]string{"index": "*-*", "data_stream": "logs-*-default"}[mode]
				if f.Distribution == "opensearch" {
					if !strings.Contains(policy, `"min_index_age":"14d"`) || !strings.Contains(policy, `"ism_template"`) || !strings.Contains(policy, glob) ||
						strings.Contains(policy, "rollover") != (mode == "data_stream") {
						t.Fatalf("ISM policy %s", policy)
					}
					return
				}
				if !strings.Contains(policy, `"min_age":"14d"`) || strings.Contains(policy, "rollover") != (mode == "data_stream") ||
					!strings.Contains(tmpl, `"index.lifecycle.name":"logpipe"`) {
					t.Fatalf("ILM policy %s, template %s", policy, tmpl)
				}
			})
		}
	}
}

// TestRetentionDelete: with retention_delete the transfer deletes its own daily
// indices older than retention_days (by name, never by wildcard) and nothing else.
func TestRetentionDelete(t *testing.T) {
	b := brokertest.Start(t, 1)
	createTopic(t, b.Addr(), "web_log", 1)
	es := startFlavor(t, estest.Elasticsearch8)
	today := time.Now().UTC()
	var bulk strings.Builder
	for _, idx := range []string{
		"web_log-" + today.AddDate(0, 0, -10).Format("2006.01.02"), // expired
		"app_log-" + today.AddDate(0, 0, -8).Format("2006.01.02"),  // expired
		"web_log-" + today.AddDate(0, 0, -7).Format("2006.01.02"),  // kept: 7 days
		"web_log-" + today.Format("2006.01.02"),
		"other-index", "web_log-notadate", "x-2001.01.01-y",
	} {
		fmt.Fprintf(&bulk, "{\"index\":{\"_index\":%q,\"_id\":\"1\"}}\n{\"@timestamp\":\"2026-01-01T00:00:00Z\"}\n", idx)
	}
	resp, err := http.Post(es.URL()+"/_bulk", "application/x-ndjson", strings.NewReader(bulk.String()))
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	}
	resp.Body.Close()
	cfg := testConfig(b.Addr(), es.URL())
	cfg.ES.RetentionDays, cfg.ES.RetentionDelete = 7, true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := startTransfer(t, cfg)
	wait.For(t, 10*time.Second, "expired indices deleted", func() bool { return len(es.Indices()) == 5 })
	want := []string{"other-index", "web_log-" + today.AddDate(0, 0, -7).Format("2006.01.02"), "web_log-" + today.Format("2006.01.02"), "web_log-notadate", "x-2001.01.01-y"}
	slices.Sort(want)
	if got := es.Indices(); !slices.Equal(got, want) {
		t.Fatalf("indices %v, want %v", got, want)
	}
	if c := counter(t, r.t, "logtransfer_indices_deleted_total"); c != 2 {
		t.Fatalf("deleted counter %v", c)
	}
	if len(es.LifecyclePolicies()) != 0 {
		t.Fatal("a lifecycle policy was installed with retention_delete")
	}
}
