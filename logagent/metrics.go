package logagent

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"

	imetrics "github.com/logpipe/logpipe/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the agent's Prometheus metrics.
type metrics struct {
	reg *prometheus.Registry

	linesRead, bytesRead, linesAcked, bytesAcked *prometheus.CounterVec
	linesFiltered                                *prometheus.CounterVec
	configApplied, configRejected                prometheus.Counter
	forgotten                                    prometheus.Counter

	mu    sync.Mutex
	files map[string]*fileMetrics
}

type fileMetrics struct {
	linesRead, bytesRead, linesAcked, bytesAcked prometheus.Counter
	linesFiltered                                prometheus.Counter
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg:            imetrics.NewRegistry(),
		linesRead:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logagent_lines_read_total", Help: "Lines read, per file."}, []string{"path"}),
		bytesRead:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logagent_bytes_read_total", Help: "Bytes read, per file."}, []string{"path"}),
		linesAcked:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logagent_lines_acked_total", Help: "Lines acknowledged by Kafka, per file."}, []string{"path"}),
		bytesAcked:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logagent_bytes_acked_total", Help: "Bytes of lines acknowledged by Kafka, per file."}, []string{"path"}),
		linesFiltered:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logagent_lines_filtered_total", Help: "Lines left out by an entry's include_lines or exclude_lines (acknowledged, not sent), per file."}, []string{"path"}),
		configApplied:  prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_config_reloads_total", Help: "Collection configs applied."}),
		configRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_config_rejected_total", Help: "Invalid collection configs rejected."}),
		forgotten:      prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_registry_forgotten_total", Help: "Registry entries forgotten: files gone and fully acknowledged (clean_removed), or untouched for clean_inactive."}),
		files:          map[string]*fileMetrics{},
	}
	m.reg.MustRegister(m.linesRead, m.bytesRead, m.linesAcked, m.bytesAcked, m.linesFiltered, m.configApplied, m.configRejected, m.forgotten)
	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter("logagent_produce_errors_total", "Produce failures reported by the Kafka client.", func() float64 { return float64(a.prod.Errors.Load()) })
	counter("logagent_produce_retries_total", "Records sent again after a failure.", func() float64 { return float64(a.prod.Retries.Load()) })
	counter("logagent_lines_split_total", "Lines longer than max_line_bytes, split.", func() float64 { return float64(a.stats.LinesSplit.Load()) })
	counter("logagent_rotations_total", "Rotated files finished.", func() float64 { return float64(a.stats.Rotations.Load()) })
	counter("logagent_truncations_total", "Truncations (copytruncate) detected.", func() float64 { return float64(a.stats.Truncations.Load()) })
	counter("logagent_open_errors_total", "Failures to open a file (retried).", func() float64 { return float64(a.stats.OpenErrors.Load()) })
	refused := func(reason string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "logagent_files_refused_total", Help: "Paths refused: a symlink the entry does not follow, or not a regular file (FIFO, socket, device, directory).",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, f))
	}
	refused("symlink", func() float64 { return float64(a.stats.RefusedSymlinks.Load()) })
	refused("not_regular", func() float64 { return float64(a.stats.RefusedNotRegular.Load()) })
	counter("logagent_format_errors_total", "Lines of a cri or docker entry not in that format (shipped as they are).", func() float64 { return float64(a.stats.FormatErrors.Load()) })
	counter("logagent_files_closed_inactive_total", "Descriptors of files idle for close_inactive closed.", func() float64 { return float64(a.stats.ClosedInactive.Load()) })
	counter("logagent_watch_overflows_total", "File system event queue overflows (each rescans every entry).", func() float64 { return float64(a.hub.Overflows.Load()) })
	counter("logagent_watch_errors_total", "Directories that could not be watched for events (found by polling instead).", func() float64 { return float64(a.hub.WatchErrors.Load()) })
	gauge("logagent_watched_dirs", "Directories watched for file system events.", func() float64 { return float64(a.hub.Watched()) })
	gauge("logagent_registry_entries", "Files the registry remembers.", func() float64 { return float64(a.reg.Len()) })
	gauge("logagent_inflight_bytes", "Bytes sent and not yet acknowledged.", func() float64 { return float64(a.prod.InFlightBytes()) })
	m.reg.MustRegister(lagCollector{a})
	return m
}

func (m *metrics) file(path string) *fileMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[path]
	if f == nil {
		f = &fileMetrics{m.linesRead.WithLabelValues(path), m.bytesRead.WithLabelValues(path), m.linesAcked.WithLabelValues(path), m.bytesAcked.WithLabelValues(path),
			m.linesFiltered.WithLabelValues(path)}
		m.files[path] = f
	}
	return f
}

// acked counts acknowledged lines of a file (the checkpointer's observer). Those of
// a file whose series were removed are not counted.
func (m *metrics) acked(path string, lines int, bytes int64) {
	m.mu.Lock()
	f := m.files[path]
	m.mu.Unlock()
	if f != nil {
		f.linesAcked.Add(float64(lines))
		if bytes > 0 {
			f.bytesAcked.Add(float64(bytes))
		}
	}
}

// forgetFile removes the per-file series of a path no harvester follows any more.
// Acknowledgements still in flight count on the removed series, unseen.
func (m *metrics) forgetFile(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[path]; !ok {
		return
	}
	delete(m.files, path)
	for _, v := range []*prometheus.CounterVec{m.linesRead, m.bytesRead, m.linesAcked, m.bytesAcked, m.linesFiltered} {
		v.DeleteLabelValues(path)
	}
}

// lagCollector reports, at scrape time, the bytes of each file not yet acknowledged.
type lagCollector struct{ a *Agent }

var lagDesc = prometheus.NewDesc("logagent_lag_bytes", "Bytes of the file not yet acknowledged by Kafka.", []string{"path"}, nil)

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }
func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.a.Status() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(st.Lag), st.Path)
	}
}

// Registry is the agent's metrics registry.
func (a *Agent) Registry() *prometheus.Registry { return a.m.reg }

// StatusHandler serves Status as JSON.
func (a *Agent) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a.Status())
	})
}

func sortStatus(s []FileStatus) {
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
}
