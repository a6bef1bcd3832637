package server

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logpipe/logpipe/broker/storage"
)

// errInternalTopic is answered with INVALID_TOPIC_EXCEPTION, as Kafka answers a
// produce to an internal topic ("Cannot append to internal topic").
var errInternalTopic = errors.New("internal topic")

// checkProduceTopic refuses client produces to the broker's internal topics
// (__consumer_offsets and any other "__…" topic): only the broker writes them.
func (s *Server) checkProduceTopic(topic string) error {
	if storage.IsInternalTopic(topic) {
		s.metrics.limitHit("internal_topic")
		return fmt.Errorf("%w: cannot append to internal topic %s", errInternalTopic, topic)
	}
	return nil
}

// refuseInternal returns the INVALID_REQUEST error for an admin operation on an
// internal topic, or nil for other topics.
func (s *Server) refuseInternal(op, topic string) error {
	if !storage.IsInternalTopic(topic) {
		return nil
	}
	s.metrics.limitHit("internal_topic")
	return fmt.Errorf("%w: the internal topic %s cannot be %s", errInvalidRequest, topic, op)
}

// storeCollector exports the storage's resource counters at scrape time.
type storeCollector struct{ store *storage.Store }

var (
	openSegmentsDesc = prometheus.NewDesc("logpipe_broker_open_segment_files",
		"Sealed segment log files held open by the cache ([log] max_open_segments).", nil, nil)
	segmentOpensDesc = prometheus.NewDesc("logpipe_broker_segment_file_opens_total",
		"Sealed segment log files opened on demand.", nil, nil)
	segmentEvictionsDesc = prometheus.NewDesc("logpipe_broker_segment_file_evictions_total",
		"Sealed segment log files closed because [log] max_open_segments were open.", nil, nil)
	topicsRefusedDesc = prometheus.NewDesc("logpipe_broker_topics_refused_total",
		"Topic creations refused by [log] max_topics.", nil, nil)
	partitionsRefusedDesc = prometheus.NewDesc("logpipe_broker_partitions_refused_total",
		"Topic or partition creations refused by [log] max_partitions.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{openSegmentsDesc, segmentOpensDesc, segmentEvictionsDesc, topicsRefusedDesc, partitionsRefusedDesc} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store.Stats()
	ch <- prometheus.MustNewConstMetric(openSegmentsDesc, prometheus.GaugeValue, float64(st.OpenSegmentFiles))
	ch <- prometheus.MustNewConstMetric(segmentOpensDesc, prometheus.CounterValue, float64(st.SegmentFileOpens))
	ch <- prometheus.MustNewConstMetric(segmentEvictionsDesc, prometheus.CounterValue, float64(st.SegmentEvictions))
	ch <- prometheus.MustNewConstMetric(topicsRefusedDesc, prometheus.CounterValue, float64(st.TopicsRefused))
	ch <- prometheus.MustNewConstMetric(partitionsRefusedDesc, prometheus.CounterValue, float64(st.PartitionsRefused))
}
