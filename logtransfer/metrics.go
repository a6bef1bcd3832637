package logtransfer

import (
	"strings"
	"sync"
	"sync/atomic"

	imetrics "github.com/logpipe/logpipe/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg                                                    *prometheus.Registry
	existed, indicesDeleted, timestampsUnparsed            prometheus.Counter
	consumed, indexed, retried, deadLettered, bulkFailures prometheus.Counter
	// Hostile or broken input, each counted where it is skipped or changed.
	timestampsReplaced, dlqTruncated, dlqDropped, batchesSkipped, recordsRescued, offsetsSkipped prometheus.Counter
	bulkSeconds                                                                                  prometheus.Histogram
	lag                                                                                          *prometheus.GaugeVec
	// parseFailures counts by dataset the lines their parser did not match; the
	// datasets are the configured ones, a bounded set.
	parseFailures *prometheus.CounterVec
	// unparsed counts the records of datasets no parser knows, by dataset: the first
	// maxUnknownDatasets names seen, the rest under "_other".
	unparsed  *prometheus.CounterVec
	unknownMu sync.Mutex
	unknown   map[string]bool
	indexedN  atomic.Int64 // indexed, readable by benchmarks
}

func (m *metrics) indexedCount() int { return int(m.indexedN.Load()) }

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		reg:                imetrics.NewRegistry(),
		consumed:           c("logtransfer_records_consumed_total", "Records consumed from Kafka."),
		indexed:            c("logtransfer_documents_indexed_total", "Documents the output acknowledged."),
		retried:            c("logtransfer_items_retried_total", "Documents sent again after a transient per-item failure."),
		deadLettered:       c("logtransfer_dead_lettered_total", "Records produced to a dead-letter topic."),
		bulkFailures:       c("logtransfer_bulk_failures_total", "Whole bulk requests that failed and were retried."),
		timestampsReplaced: c("logtransfer_timestamps_replaced_total", "Records whose timestamp was outside [decode] max_timestamp_future / max_timestamp_age, indexed with the time of indexing as @timestamp."),
		dlqTruncated:       c("logtransfer_dead_letter_truncated_total", "Dead-letter copies truncated to fit [kafka] dlq_max_message_bytes (or the broker's limit)."),
		dlqDropped:         c("logtransfer_dead_letter_dropped_total", "Rejected records whose dead-letter copy the broker refused even when truncated to its headers; logged and skipped."),
		batchesSkipped:     c("logtransfer_batches_skipped_total", "Record batches skipped because they cannot be decoded (corrupt, or decompressing past [kafka] max_decompressed_batch_bytes)."),
		offsetsSkipped:     c("logtransfer_offsets_skipped_too_large_total", "Offsets the Kafka client skipped because their batch is larger than [kafka] max_decompressed_batch_bytes, or cut short by a record running past its end (one per offset)."),
		recordsRescued:     c("logtransfer_records_rescued_total", "Good records read by the transfer's own decoder from a fetch that the Kafka client could not decode."),
		existed:            c("logtransfer_documents_existed_total", "Data-stream creates answered 409 (the document of this line is indexed already); counted as indexed too."),
		indicesDeleted:     c("logtransfer_indices_deleted_total", "Expired daily indices deleted by the transfer ([es] retention_delete)."),
		timestampsUnparsed: c("logtransfer_timestamps_unparsed_total", "JSON lines whose [decode] timestamp_field could not be parsed or was outside max_timestamp_future / max_timestamp_age; indexed with the record's time."),
		bulkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logtransfer_bulk_seconds", Help: "Bulk request latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		parseFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logtransfer_parse_failures_total",
			Help: "Lines their dataset's parser did not match, indexed with the tag _parsefailure, by dataset."}, []string{"dataset"}),
		unparsed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logtransfer_unknown_dataset_total",
			Help: "Records of a dataset no parser knows, indexed without parsing, by dataset (after 100 names, _other)."}, []string{"dataset"}),
		unknown: map[string]bool{},
		lag:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "logtransfer_consumer_lag", Help: "Records not yet stored, per partition, as of the last batch."}, []string{"topic", "partition"}),
	}
	m.reg.MustRegister(m.parseFailures, m.unparsed)
	m.reg.MustRegister(m.consumed, m.indexed, m.retried, m.deadLettered, m.bulkFailures, m.bulkSeconds, m.lag,
		m.existed, m.indicesDeleted, m.timestampsUnparsed, m.timestampsReplaced, m.dlqTruncated, m.dlqDropped, m.batchesSkipped, m.recordsRescued, m.offsetsSkipped)
	return m
}

// maxUnknownDatasets bounds the label values of logtransfer_unknown_dataset_total.
const maxUnknownDatasets = 100

// unknownDataset counts a record whose dataset no parser knows, and logs each such
// dataset the first time it is seen (at most maxUnknownDatasets of them).
func (t *Transfer) unknownDataset(name string) {
	m := t.m
	m.unknownMu.Lock()
	seen := m.unknown[name]
	full := len(m.unknown) >= maxUnknownDatasets
	if !seen && !full {
		m.unknown[name] = true
	}
	m.unknownMu.Unlock()
	switch {
	case seen:
	case full:
		name = "_other"
	default:
		t.log.Warn("records of an unknown dataset are indexed without parsing", "dataset", name,
			"known", strings.Join(t.builder.Datasets.Datasets(), ","))
	}
	m.unparsed.WithLabelValues(name).Inc()
}
