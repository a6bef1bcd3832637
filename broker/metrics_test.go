package broker_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
)

func TestMetricsAndHealth(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	cl := newKgo(t, b.Addr(), kgo.DefaultProduceTopic("metered"), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for range 100 {
		recs = append(recs, &kgo.Record{Value: make([]byte, 100)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumeAll(t, b.Addr(), "metered", 100)

	get := func(path string) string {
		resp, err := http.Get("http://" + b.MetricsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(body)
	}
	if h := get("/healthz"); !strings.Contains(h, "ok") {
		t.Fatalf("/healthz: %q", h)
	}
	m := get("/metrics")
	for _, want := range []string{
		`logpipe_broker_requests_total{api="Produce"}`,
		`logpipe_broker_request_duration_seconds_bucket{api="Fetch"`,
		`logpipe_broker_records_in_total{topic="metered"} 100`,
		`logpipe_broker_records_out_total{topic="metered"} 100`,
		`logpipe_broker_bytes_in_total{topic="metered"}`,
		`logpipe_broker_bytes_out_total{topic="metered"}`,
		`logpipe_broker_fsync_wait_seconds_count`,
		`logpipe_broker_log_size_bytes{partition="0",topic="metered"}`,
		`logpipe_broker_log_end_offset{partition=`,
		`logpipe_broker_connections`,
		`go_goroutines`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
