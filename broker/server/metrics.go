package server

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// serverMetrics are the broker's protocol metrics. They are always counted and
// registered only when a registry is given.
type serverMetrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	bytesIn     *prometheus.CounterVec
	recordsIn   *prometheus.CounterVec
	bytesOut    *prometheus.CounterVec
	recordsOut  *prometheus.CounterVec
	syncLatency prometheus.Histogram
	conns       prometheus.Gauge
	limits      *prometheus.CounterVec
	authFails   *prometheus.CounterVec

	traffic sync.Map // topic name -> *topicTraffic, for Server.Traffic
}

// topicTraffic counts one topic's records and bytes in and out.
type topicTraffic struct {
	recordsIn, bytesIn, recordsOut, bytesOut atomic.Int64
}

func (m *serverMetrics) topic(name string) *topicTraffic {
	if t, ok := m.traffic.Load(name); ok {
		return t.(*topicTraffic)
	}
	t, _ := m.traffic.LoadOrStore(name, &topicTraffic{})
	return t.(*topicTraffic)
}

// Traffic is what a topic received from producers and sent to consumers since the
// broker started.
type Traffic struct {
	RecordsIn, BytesIn, RecordsOut, BytesOut int64
}

// Traffic returns each topic's counts since the broker started.
func (s *Server) Traffic() map[string]Traffic {
	out := map[string]Traffic{}
	s.metrics.traffic.Range(func(k, v any) bool {
		t := v.(*topicTraffic)
		out[k.(string)] = Traffic{RecordsIn: t.recordsIn.Load(), BytesIn: t.bytesIn.Load(), RecordsOut: t.recordsOut.Load(), BytesOut: t.bytesOut.Load()}
		return true
	})
	return out
}

func newServerMetrics(reg prometheus.Registerer, store *storage.Store) (*serverMetrics, error) {
	topic := []string{"topic"}
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_requests_total", Help: "Requests answered, by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "logpipe_broker_request_duration_seconds",
			Help:    "Time from a request's decoding until its response is ready, by API (Fetch includes its long poll).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_bytes_in_total", Help: "Record batch bytes appended, by topic.",
		}, topic),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_records_in_total", Help: "Records appended, by topic.",
		}, topic),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_bytes_out_total", Help: "Record batch bytes sent to consumers, by topic.",
		}, topic),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_records_out_total", Help: "Records sent to consumers, by topic.",
		}, topic),
		syncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "logpipe_broker_fsync_wait_seconds",
			Help:    "Time an acks=all produce waited for the fsync of a partition (group commit included).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "logpipe_broker_connections", Help: "Open client connections.",
		}),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_authentication_failures_total",
			Help: "Failed authentications, by mechanism (tls for handshakes, unauthenticated_request for requests sent before SASL).",
		}, []string{"mechanism"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_limit_hits_total",
			Help: "Times a limit refused or slowed a client, by limit (the README's Limits section names them).",
		}, []string{"limit"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut, m.syncLatency, m.conns, m.limits, m.authFails, logCollector{store}, storeCollector{store}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *serverMetrics) connOpened() { m.conns.Inc() }

// authFailed counts one failed authentication.
func (m *serverMetrics) authFailed(mechanism string) { m.authFails.WithLabelValues(mechanism).Inc() }

// limitHit counts one refusal or wait by the named limit.
func (m *serverMetrics) limitHit(limit string) { m.limits.WithLabelValues(limit).Inc() }
func (m *serverMetrics) connClosed()           { m.conns.Dec() }

func (m *serverMetrics) request(api int16, d time.Duration) {
	name := kmsg.NameForKey(api)
	m.requests.WithLabelValues(name).Inc()
	m.latency.WithLabelValues(name).Observe(d.Seconds())
}

func (m *serverMetrics) produced(topic string, bytes, records int) {
	m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
	m.recordsIn.WithLabelValues(topic).Add(float64(records))
	t := m.topic(topic)
	t.bytesIn.Add(int64(bytes))
	t.recordsIn.Add(int64(records))
}

func (m *serverMetrics) fetched(topics []fetchTopic) {
	for _, t := range topics {
		var bytes, records int64
		for _, p := range t.partitions {
			if p.records != nil {
				bytes += p.records.Len()
				records += countRecords(p.records)
			}
		}
		if bytes > 0 {
			m.bytesOut.WithLabelValues(t.name).Add(float64(bytes))
			m.recordsOut.WithLabelValues(t.name).Add(float64(records))
			tt := m.topic(t.name)
			tt.bytesOut.Add(bytes)
			tt.recordsOut.Add(records)
		}
	}
}

func (m *serverMetrics) syncDone(d time.Duration) { m.syncLatency.Observe(d.Seconds()) }

// logCollector reports each partition's log size and offsets, read from the
// store at scrape time.
type logCollector struct{ store *storage.Store }

var (
	logSizeDesc = prometheus.NewDesc("logpipe_broker_log_size_bytes",
		"Bytes of all segments of a partition.", []string{"topic", "partition"}, nil)
	logEndDesc = prometheus.NewDesc("logpipe_broker_log_end_offset",
		"Next offset to be assigned in a partition (= high watermark).", []string{"topic", "partition"}, nil)
	logStartDesc = prometheus.NewDesc("logpipe_broker_log_start_offset",
		"First offset still stored in a partition.", []string{"topic", "partition"}, nil)
)

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- logSizeDesc
	ch <- logEndDesc
	ch <- logStartDesc
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.store.Topics() {
		for _, p := range t.Partitions() {
			labels := []string{t.Name(), strconv.Itoa(int(p.Index()))}
			ch <- prometheus.MustNewConstMetric(logSizeDesc, prometheus.GaugeValue, float64(p.Size()), labels...)
			ch <- prometheus.MustNewConstMetric(logEndDesc, prometheus.GaugeValue, float64(p.HighWatermark()), labels...)
			ch <- prometheus.MustNewConstMetric(logStartDesc, prometheus.GaugeValue, float64(p.LogStartOffset()), labels...)
		}
	}
}
