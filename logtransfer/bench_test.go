package logtransfer

import (
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
)

// BenchmarkBrokerToES indexes b.N records from 6 partitions of the built-in broker
// (in process) into the Elasticsearch stand-in in fast mode, and reports documents/s
// and the CPU seconds of the whole process per million documents.
func BenchmarkBrokerToES(b *testing.B) {
	br := brokertest.Start(b, 6)
	createTopic(b, br.Addr(), "web_log", 6)
	es := startES(b)
	es.SetFast(true, nil)
	produce(b, br.Addr(), "web_log", 0, b.N)
	cfg := testConfig(br.Addr(), es.URL())
	cfg.ES.Template = false
	cfg.Output.BulkActions = 5000
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	r := startTransfer(b, cfg)
	deadline := time.Now().Add(10 * time.Minute)
	for r.t.m.indexedCount() < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d documents", r.t.m.indexedCount(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/Mdocs")
}

// BenchmarkDataStreamVsIndex indexes b.N records in index mode and b.N records in
// data-stream mode (create actions; the stand-in in fast mode) from 6 partitions of
// the built-in broker, and reports the documents/s of each and their ratio
// (goal: data streams at least 0.9 of index mode).
func BenchmarkDataStreamVsIndex(b *testing.B) {
	br := brokertest.Start(b, 6)
	rate := map[string]float64{}
	for _, mode := range []string{"index", "data_stream"} {
		topic := "web_log"
		if mode == "data_stream" {
			topic = "app_log"
		}
		createTopic(b, br.Addr(), topic, 6)
		produce(b, br.Addr(), topic, 0, b.N)
		es := startES(b)
		es.SetFast(true, nil)
		cfg := testConfig(br.Addr(), es.URL())
		cfg.Kafka.Topics, cfg.Kafka.Group = topic, "bench-"+mode
		cfg.ES.Mode = mode
		cfg.Output.BulkActions = 5000
		start := time.Now()
		r := startTransfer(b, cfg)
		deadline := time.Now().Add(10 * time.Minute)
		for r.t.m.indexedCount() < b.N {
			if time.Now().After(deadline) {
				b.Fatalf("%s: only %d of %d documents", mode, r.t.m.indexedCount(), b.N)
			}
			time.Sleep(time.Millisecond)
		}
		rate[mode] = float64(b.N) / time.Since(start).Seconds()
		r.stop()
	}
	b.ReportMetric(rate["index"], "docs/s-index")
	b.ReportMetric(rate["data_stream"], "docs/s-datastream")
	b.ReportMetric(rate["data_stream"]/rate["index"], "datastream/index")
}
