package logtransfer

import (
	"sync/atomic"

	imetrics "github.com/logpipe/logpipe/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg                                                    *prometheus.Registry
	consumed, indexed, retried, deadLettered, bulkFailures prometheus.Counter
	bulkSeconds                                            prometheus.Histogram
	lag                                                    *prometheus.GaugeVec
	indexedN                                               atomic.Int64 // indexed, readable by benchmarks
}

func (m *metrics) indexedCount() int { return int(m.indexedN.Load()) }

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		reg:          imetrics.NewRegistry(),
		consumed:     c("logtransfer_records_consumed_total", "Records consumed from Kafka."),
		indexed:      c("logtransfer_documents_indexed_total", "Documents the output acknowledged."),
		retried:      c("logtransfer_items_retried_total", "Documents sent again after a transient per-item failure."),
		deadLettered: c("logtransfer_dead_lettered_total", "Records produced to a dead-letter topic."),
		bulkFailures: c("logtransfer_bulk_failures_total", "Whole bulk requests that failed and were retried."),
		bulkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logtransfer_bulk_seconds", Help: "Bulk request latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "logtransfer_consumer_lag", Help: "Records not yet stored, per partition, as of the last batch."}, []string{"topic", "partition"}),
	}
	m.reg.MustRegister(m.consumed, m.indexed, m.retried, m.deadLettered, m.bulkFailures, m.bulkSeconds, m.lag)
	return m
}
