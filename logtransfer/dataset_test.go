package logtransfer

import (
	"context"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDatasetsIntoDataStreams: with [es] mode = data_stream and the default name,
// a record of a dataset goes to logs-<dataset>-default and one without to
// logs-<topic>-default, as Elastic's shippers name them; a line its parser does not
// match counts in logtransfer_parse_failures_total{dataset}, a dataset no parser knows
// in logtransfer_unknown_dataset_total{dataset}; every record is indexed.
func TestDatasetsIntoDataStreams(t *testing.T) {
	b := brokertest.Start(t, 3)
	es := startES(t)
	cfg := testConfig(b.Addr(), es.URL())
	cfg.ES.Mode = "data_stream"
	if cfg.ES.DataStream != "logs-{dataset}-default" {
		t.Fatalf("default data_stream %q", cfg.ES.DataStream)
	}
	tr := startTransfer(t, cfg)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("web_log"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now().Truncate(time.Second)
	rec := func(line, dataset string) *kgo.Record {
		r := &kgo.Record{Value: []byte(line), Timestamp: now}
		if dataset != "" {
			r.Headers = []kgo.RecordHeader{{Key: record.Dataset, Value: []byte(dataset)}, {Key: record.Timezone, Value: []byte("UTC")}}
		}
		return r
	}
	access := `192.0.2.7 - - [` + now.UTC().Format("02/Jan/2006:15:04:05 -0700") + `] "GET / HTTP/1.1" 200 5 "-" "-"`
	if err := cl.ProduceSync(context.Background(),
		rec(access, "nginx.access"), rec("garbage", "nginx.access"), rec("garbage too", "nginx.access"),
		rec("a line of my app", "my.app"), rec("plain", "")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "5 documents", func() bool { return es.Count("*") == 5 })
	for stream, n := range map[string]int{"logs-nginx.access-default": 3, "logs-my.app-default": 1, "logs-web_log-default": 1} {
		if got := es.Count(stream); got != n {
			t.Errorf("%s: %d documents, want %d (streams %v)", stream, got, n, es.DataStreams())
		}
	}
	if got := labelled(t, tr.t, "logtransfer_parse_failures_total", "nginx.access"); got != 2 {
		t.Errorf("parse failures %v, want 2", got)
	}
	if got := labelled(t, tr.t, "logtransfer_unknown_dataset_total", "my.app"); got != 1 {
		t.Errorf("unknown dataset %v, want 1", got)
	}
	// The template maps the parsed fields (ECS types), so Kibana aggregates them.
	if m := es.Mapping(es.Docs("logs-nginx.access-default")[0].Index); m["http.response.status_code"] != "long" || m["source.ip"] != "ip" {
		t.Errorf("mapping %v", m)
	}
}

// labelled reads a counter of the transfer's registry by its one label's value.
func labelled(t testing.TB, tr *Transfer, name, value string) float64 {
	t.Helper()
	mfs, err := tr.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
