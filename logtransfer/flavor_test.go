package logtransfer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/logpipe/logpipe/logtransfer/output"
)

func startFlavor(t testing.TB, f estest.Flavor) *estest.Server {
	es, err := estest.StartFlavor(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Close)
	return es
}

// inStream is the where of checkDocsIn for the data stream logs-web_log-default.
func inStream(d estest.Doc) bool {
	return d.DataStream == "logs-web_log-default" && strings.HasPrefix(d.Index, ".ds-logs-web_log-default-")
}

// TestEveryFlavorAndMode indexes into Elasticsearch 7.17, 8.x and OpenSearch 2.x, as
// daily indices and as data streams: exactly one document per record, the template
// installed with the composable API, and in data-stream mode a full re-delivery (a
// new consumer group reads the topic again) answered 409 for every record, counted
// as indexed, leaving one document per record.
func TestEveryFlavorAndMode(t *testing.T) {
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	const n = 3000
	produce(t, b.Addr(), "web_log", 0, n)
	for _, f := range estest.Flavors() {
		for _, mode := range []string{"index", "data_stream"} {
			t.Run(f.String()+"/"+mode, func(t *testing.T) {
				es := startFlavor(t, f)
				cfg := testConfig(b.Addr(), es.URL())
				cfg.Kafka.Group = "g-" + f.Version + "-" + mode
				cfg.ES.Mode = mode
				r := startTransfer(t, cfg)
				if got := r.t.sink.(*output.ES).Cluster; got.Version != f.Version || got.OpenSearch() != (f.Distribution == "opensearch") {
					t.Fatalf("cluster %+v", got)
				}
				pattern, where := "web_log-*", func(d estest.Doc) bool { return d.Index == "web_log-2026.11.22" }
				if mode == "data_stream" {
					pattern, where = "logs-web_log-default", inStream
				}
				wait.For(t, 60*time.Second, "every document", func() bool { return es.Count(pattern) >= n })
				checkDocsIn(t, es, pattern, n, where)
				tmpl := es.ComposableTemplates()["logpipe"]
				var top map[string]json.RawMessage
				json.Unmarshal(tmpl, &top)
				if tmpl == nil || len(es.LegacyTemplates()) != 0 || (top["data_stream"] != nil) != (mode == "data_stream") {
					t.Fatalf("templates: composable %s, legacy %v", tmpl, es.LegacyTemplates())
				}
				if mode == "index" {
					return
				}
				if ds := es.DataStreams(); len(ds) != 1 || ds[0] != "logs-web_log-default" {
					t.Fatalf("data streams %v", ds)
				}
				r.stop()
				cfg.Kafka.Group += "-again"
				r = startTransfer(t, cfg)
				wait.For(t, 60*time.Second, "the re-delivered records", func() bool { return r.t.m.indexedCount() >= n })
				checkDocsIn(t, es, pattern, n, where)
				if es.Conflicts.Load() < n || es.Overwrites.Load() != 0 {
					t.Fatalf("%d conflicts, %d overwrites", es.Conflicts.Load(), es.Overwrites.Load())
				}
				if c := counter(t, r.t, "logtransfer_documents_existed_total"); c < n {
					t.Fatalf("existed counter %v", c)
				}
				t.Logf("%s: %d records re-delivered into the data stream: %d answered 409, still %d documents", f, n, es.Conflicts.Load(), es.Count(pattern))
			})
		}
	}
}

// counter reads a counter of the transfer's registry.
func counter(t testing.TB, tr *Transfer, name string) float64 {
	t.Helper()
	mfs, err := tr.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRefusesUnsupportedClusters: Elasticsearch 6 (mapping types), a cluster that
// does not say what it is, and data streams on Elasticsearch 7.7 are refused at
// start with a message that says why; 7.7 in index mode gets the legacy template.
func TestRefusesUnsupportedClusters(t *testing.T) {
	newT := func(es *estest.Server, mode string) error {
		cfg := testConfig("127.0.0.1:1", es.URL())
		cfg.ES.Mode = mode
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr, err := New(ctx, cfg, logging.Discard())
		if err == nil {
			tr.sink.Close()
		}
		return err
	}
	if err := newT(startFlavor(t, estest.Elasticsearch6), "index"); !errors.Is(err, output.ErrUnsupported) || !strings.Contains(err.Error(), "elasticsearch 6.8.23") {
		t.Fatalf("Elasticsearch 6: %v", err)
	}
	es77 := startFlavor(t, estest.Elasticsearch77)
	if err := newT(es77, "data_stream"); err == nil || !strings.Contains(err.Error(), "no data streams") {
		t.Fatalf("data streams on 7.7: %v", err)
	}
	if err := newT(es77, "index"); err != nil || len(es77.LegacyTemplates()) != 1 {
		t.Fatalf("7.7 in index mode: %v, legacy templates %v", err, es77.LegacyTemplates())
	}
	for body, want := range map[string]string{
		`{"name":"x"}`: "not Elasticsearch or OpenSearch",
		`{"version":{"number":"2.11.0","distribution":"opensearch"}}`:      "",
		`{"version":{"number":"1.3.0","distribution":"solr"}}`:             `distribution "solr"`,
		`{"version":{"number":"8.15.0"}}`:                                  "X-Elastic-Product",
		`{"version":{"number":"0.9.0","distribution":"opensearch"}}`:       "opensearch 0.9.0",
		`{"version":{"number":"7.17.1"},"tagline":"You Know, for Search"}`: "X-Elastic-Product",
	} {
		_, err := output.ParseCluster([]byte(body), "")
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
