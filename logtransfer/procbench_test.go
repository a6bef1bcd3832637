package logtransfer

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/proctest"
)

// BenchmarkTransferProcess measures the transfer alone: the logtransfer binary indexes
// b.N records from 6 partitions of the broker binary (another process) into the
// Elasticsearch stand-in in fast mode (in the benchmark's process). It reports
// documents/s and, from /proc for the transfer's process only, its CPU seconds per
// million documents, the cores it used and its peak RSS (target: 200,000 documents/s).
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
	produce(b, addr, "web_log", 0, b.N)
	es := startES(b)
	es.SetFast(true, nil)

	b.ResetTimer()
	tr := proctest.Start(b, dir, "logtransfer", filepath.Join(bin, "logtransfer"), fmt.Sprintf(
		"[kafka]\nbrokers = %s\ntopics = web_log\nsession_timeout = 6s\n[output]\nbulk_actions = 5000\n[es]\nurls = %s\ntemplate = false\n[metrics]\nlisten =\n[logging]\nlevel = warn\n",
		addr, es.URL()))
	defer proctest.Stop(tr)
	deadline = time.Now().Add(10 * time.Minute)
	start := time.Now()
	var first time.Duration
	for es.BulkItems.Load() < int64(b.N) {
		if first == 0 && es.BulkItems.Load() > 0 {
			first = time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d documents", es.BulkItems.Load(), b.N)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	cpu, rss := proctest.CPU(b, tr.Process.Pid), proctest.PeakRSS(b, tr.Process.Pid)
	elapsed := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/elapsed, "docs/s")
	b.ReportMetric(cpu/float64(b.N)*1e6, "transfer-cpu-s/Mdocs")
	b.ReportMetric(cpu/elapsed, "transfer-cores")
	b.ReportMetric(rss/(1<<20), "transfer-peak-RSS-MiB")
	b.ReportMetric(float64(first.Milliseconds()), "first-doc-ms")
}

// brokerUp tells whether something listens at addr.
func brokerUp(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
