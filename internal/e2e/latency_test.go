package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/proctest"
)

// BenchmarkEndToEndLatency writes 10,000 lines/s for b.N seconds to a file shipped by
// the agent through the broker and the transfer (processes, each with its shipped
// defaults: the ini files name only addresses, directories and the topic) into the Elasticsearch stand-in, and reports
// the time from a line's append to its document being indexed: p50, p99 and p99.9 in
// milliseconds.
func BenchmarkEndToEndLatency(b *testing.B) {
	root := b.TempDir()
	bin := proctest.Build(b, filepath.Join(root, "bin"), "broker", "logagent", "logtransfer")
	etcd, err := embedetcd.Start(filepath.Join(root, "etcd"), "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer etcd.Close()
	es, err := estest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	// The stand-in keeps what is measured of each document rather than the documents:
	// a heap of hundreds of thousands of them made its garbage collector a stall of
	// the whole (two-core) machine every second or two, measured as latency.
	var (
		mu      sync.Mutex
		samples []sample
		docs    atomic.Int64
	)
	es.SetFast(true, func(src []byte, indexed time.Time) {
		docs.Add(1)
		if sm, ok := parseSample(src, indexed); ok {
			mu.Lock()
			samples = append(samples, sm)
			mu.Unlock()
		}
	})
	addr := proctest.FreeAddr(b)
	logPath := filepath.Join(root, "lat.log")
	const topic = "lat_log"
	write := func(name, text string) string {
		p := filepath.Join(root, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	out, _ := os.Create(filepath.Join(root, "components.log"))
	defer out.Close()
	procs := []*proc{
		{name: "broker", log: out, args: []string{filepath.Join(bin, "broker"), "-config", write("b.ini", fmt.Sprintf("[server]\nlisten = %s\nadvertised = %s\n[log]\ndir = %s\n[metrics]\nlisten =\n[logging]\nlevel = warn\n", addr, addr, filepath.Join(root, "broker")))}},
		{name: "logtransfer", log: out, args: []string{filepath.Join(bin, "logtransfer"), "-config", write("t.ini", fmt.Sprintf("[kafka]\nbrokers = %s\ntopics = %s\n[es]\nurls = %s\n[metrics]\nlisten =\n[logging]\nlevel = warn\n", addr, topic, es.URL()))}},
		{name: "logagent", log: out, args: []string{filepath.Join(bin, "logagent"), "-config", write("a.ini", fmt.Sprintf("[agent]\nhost = lat\ndata_dir = %s\n[etcd]\nendpoints = %s\n[kafka]\nbrokers = %s\n[metrics]\nlisten =\n[logging]\nlevel = warn\n", filepath.Join(root, "agent"), etcd.Endpoint(), addr))}},
	}
	for _, p := range procs {
		p.tb = b
		p.start()
		defer p.stop()
	}
	if err := etcd.Put("/logagent/lat/collect_config", fmt.Sprintf(`[{"path": %q, "topic": %q}]`, logPath, topic)); err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// writeTick appends one tick's worth of lines (10,000 lines/s in 10 ms ticks), each
	// carrying its append time, tagged for the measured phase or not.
	const perSecond, tick = 10000, 10 * time.Millisecond
	n, warm := 0, 0
	writeTick := func(measured bool) {
		var sb strings.Builder
		now := time.Now().UnixNano()
		for i := 0; i < perSecond*int(tick)/int(time.Second); i++ {
			if measured {
				fmt.Fprintf(&sb, "lat %d %d GET /index.html HTTP/1.1 200 512 \"curl/8.0\"\n", n, now)
				n++
			} else {
				fmt.Fprintf(&sb, "warm %d %d GET /index.html HTTP/1.1 200 512 \"curl/8.0\"\n", warm, now)
				warm++
			}
		}
		f.WriteString(sb.String())
	}
	// Warm up at the measured rate: the first lines wait for the topic's creation and the
	// group's first join, and the agent's polls of the file have backed off while it was
	// idle. Measure from one second after the first document.
	next := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	var first time.Time
	for time.Now().Before(deadline) && (first.IsZero() || time.Since(first) < time.Second) {
		writeTick(false)
		if first.IsZero() && docs.Load() > 0 {
			first = time.Now()
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	if first.IsZero() {
		logs, _ := os.ReadFile(out.Name())
		b.Fatalf("no document indexed within 60 s of the first line; the components logged:\n%s", logs)
	}
	b.ResetTimer()
	for end := next.Add(time.Duration(b.N) * time.Second); time.Now().Before(end); {
		writeTick(true)
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	deadline = time.Now().Add(60 * time.Second)
	for docs.Load() < int64(n+warm) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	// lat is append to indexed; read is append to the agent reading the line (the
	// document's @timestamp), so that a slow run shows which half is slow.
	var lat, read []float64
	mu.Lock()
	for _, sm := range samples {
		lat = append(lat, float64(sm.indexed-sm.appended)/1e6)
		read = append(read, float64(sm.read-sm.appended)/1e6)
	}
	mu.Unlock()
	if len(lat) < n {
		b.Fatalf("%d of %d lines indexed", len(lat), n)
	}
	sort.Float64s(lat)
	sort.Float64s(read)
	q := func(xs []float64, p float64) float64 { return xs[min(len(xs)-1, int(p*float64(len(xs))))] }
	b.ReportMetric(q(lat, 0.50), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(q(lat, 0.999), "p99.9-ms")
	b.ReportMetric(q(read, 0.50), "read-p50-ms")
	b.ReportMetric(q(read, 0.99), "read-p99-ms")
	b.ReportMetric(float64(n)/float64(b.N), "lines/s")
}

// sample is what the latency benchmark keeps of a measured line: when it was
// appended, read by the agent (the document's @timestamp) and indexed (ns).
type sample struct{ appended, read, indexed int64 }

// parseSample reads a measured line's document: its message is "lat <n> <appended ns>
// ...". Other documents (the warm-up's) are not samples.
func parseSample(src []byte, indexed time.Time) (sample, bool) {
	const msg, ts = `"message":"lat `, `"@timestamp":"`
	i := bytes.Index(src, []byte(msg))
	if i < 0 {
		return sample{}, false
	}
	fields := bytes.Fields(src[i+len(msg):])
	if len(fields) < 2 {
		return sample{}, false
	}
	appended, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return sample{}, false
	}
	sm := sample{appended: appended, indexed: indexed.UnixNano()}
	if j := bytes.Index(src, []byte(ts)); j >= 0 {
		rest := src[j+len(ts):]
		if k := bytes.IndexByte(rest, '"'); k >= 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:k])); err == nil {
				sm.read = t.UnixNano()
			}
		}
	}
	return sm, true
}
