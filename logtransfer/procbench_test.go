package logtransfer

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/proctest"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkTransferProcess measures the transfer alone: the logtransfer binary indexes
// b.N records (nginx access lines of about 200 bytes, agent headers) from 6
// partitions of the broker binary (another process) into the Elasticsearch stand-in
// in fast mode (in the benchmark's process). It reports documents/s and, from /proc
// for the transfer's process only, its CPU seconds per million documents, the cores it
// used and its peak RSS (target: 200,000 documents/s). Then, in the same run, it
// indexes the same lines as dataset nginx.access, parsed, and reports their rate and
// CPU, the ratio of the two rates (goal: at least 0.7) and the parse cost per document
// (the difference in CPU).
func BenchmarkTransferProcess(b *testing.B) {
	bin := proctest.Build(b, b.TempDir(), "broker", "logtransfer")
	dir := b.TempDir()
	addr := proctest.FreeAddr(b)
	broker := proctest.Start(b, dir, "broker", filepath.Join(bin, "broker"), fmt.Sprintf(
		"[server]\nlisten = %s\n[log]\ndir = %s\n[metrics]\nlisten =\n[logging]\nlevel = warn\n[group]\ninitial_rebalance_delay = 0s\n",
		addr, filepath.Join(dir, "broker")))
	defer proctest.Stop(broker)
	deadline := time.Now().Add(30 * time.Second)
	for !brokerUp(addr) {
		if time.Now().After(deadline) {
			b.Fatal("the broker did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	createTopic(b, addr, "web_log", 6)
	produceAccess(b, addr, "web_log", "", b.N)
	createTopic(b, addr, "nginx_log", 6)
	produceAccess(b, addr, "nginx_log", "nginx.access", b.N)

	b.ResetTimer()
	raw := transferRun(b, bin, dir, addr, "web_log")
	b.StopTimer()
	elapsed := raw.elapsed.Seconds()
	b.ReportMetric(float64(b.N)/elapsed, "docs/s")
	b.ReportMetric(raw.cpu/float64(b.N)*1e6, "transfer-cpu-s/Mdocs")
	b.ReportMetric(raw.cpu/elapsed, "transfer-cores")
	b.ReportMetric(raw.rss/(1<<20), "transfer-peak-RSS-MiB")
	b.ReportMetric(float64(raw.first.Milliseconds()), "first-doc-ms")

	parsed := transferRun(b, bin, dir, addr, "nginx_log")
	b.ReportMetric(float64(b.N)/parsed.elapsed.Seconds(), "parsed-docs/s")
	b.ReportMetric(parsed.cpu/float64(b.N)*1e6, "parsed-transfer-cpu-s/Mdocs")
	b.ReportMetric(raw.elapsed.Seconds()/parsed.elapsed.Seconds(), "parsed/unparsed-rate")
	b.ReportMetric((parsed.cpu-raw.cpu)/float64(b.N)*1e6, "parse-cpu-us/doc")
}

// transferResult is what one transfer process took to index a topic.
type transferResult struct {
	elapsed, first time.Duration
	cpu, rss       float64
}

// transferRun starts a transfer consuming topic from its start and waits until the
// fast stand-in has b.N documents.
func transferRun(b *testing.B, bin, dir, addr, topic string) transferResult {
	es := startES(b)
	es.SetFast(true, nil)
	start := time.Now()
	tr := proctest.Start(b, dir, "logtransfer-"+topic, filepath.Join(bin, "logtransfer"), fmt.Sprintf(
		"[kafka]\nbrokers = %s\ngroup = bench-%s\ntopics = %s\nsession_timeout = 6s\n[output]\nbulk_actions = 5000\n[es]\nurls = %s\ntemplate = false\n[metrics]\nlisten =\n[logging]\nlevel = warn\n",
		addr, topic, topic, es.URL()))
	defer proctest.Stop(tr)
	deadline := time.Now().Add(10 * time.Minute)
	var res transferResult
	for es.BulkItems.Load() < int64(b.N) {
		if res.first == 0 && es.BulkItems.Load() > 0 {
			res.first = time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: only %d of %d documents", topic, es.BulkItems.Load(), b.N)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.elapsed = time.Since(start)
	res.cpu, res.rss = proctest.CPU(b, tr.Process.Pid), proctest.PeakRSS(b, tr.Process.Pid)
	return res
}

// produceAccess writes n agent-style records of dataset ("" none): combined log
// lines of a few clients, paths and agents, timed a minute ago.
func produceAccess(b *testing.B, addr, topic, dataset string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ts := time.Now().Add(-time.Minute)
	when := ts.Format("02/Jan/2006:15:04:05 -0700")
	paths := []string{"/", "/index.html", "/api/v1/orders/4711", "/search?q=kafka+logs", "/static/app.js"}
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36", "curl/8.5.0"}
	var recs []*kgo.Record
	for i := range n {
		line := fmt.Sprintf(`203.0.113.%d - - [%s] "GET %s HTTP/1.1" %d %d "https://example.com/" "%s"`,
			i%250+1, when, paths[i%len(paths)], []int{200, 200, 304, 404}[i%4], 100+i%5000, agents[i%len(agents)])
		r := &kgo.Record{Value: []byte(line), Timestamp: ts, Headers: []kgo.RecordHeader{
			{Key: record.Host, Value: []byte("web-1")},
			{Key: record.Path, Value: []byte("/var/log/nginx/access.log")},
			{Key: record.Offset, Value: []byte(strconv.Itoa(200 * i))},
			{Key: record.FileID, Value: []byte("1-2-0")},
			{Key: record.Timezone, Value: []byte("Europe/Berlin")},
		}}
		if dataset != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: record.Dataset, Value: []byte(dataset)})
		}
		recs = append(recs, r)
		if len(recs) == 5000 || i == n-1 {
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// brokerUp tells whether something listens at addr.
func brokerUp(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
