package logagent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/proctest"
)

// BenchmarkAgentProcess measures the agent alone: the logagent binary ships b.N lines
// from one file (or 100 files) to the broker binary running as another process, with
// acks=1 and no compression, or, in "defaults", the shipped [kafka] settings (acks=all,
// idempotent, and snappy). The files are written in full first (the agent runs flat
// out), or, with a rate, appended to at that rate while the agent ships them. It
// reports lines/s and, read from /proc for the agent's process only, its CPU seconds
// per million lines, the cores it used on average and its peak RSS (targets at
// 500,000 lines/s of ~120-byte lines: under one core and 64 MiB).
func BenchmarkAgentProcess(b *testing.B) {
	bin := proctest.Build(b, b.TempDir(), "broker", "logagent")
	for _, c := range []struct {
		files, lineLen, rate int
		defaults             bool
	}{{1, 120, 0, false}, {1, 120, 0, true}, {1, 1024, 0, false}, {100, 120, 0, false}, {1, 120, 500000, false}} {
		name := fmt.Sprintf("files=%d/line=%dB", c.files, c.lineLen)
		if c.rate > 0 {
			name += fmt.Sprintf("/rate=%dk", c.rate/1000)
		}
		kafka := "required_acks = 1\ncompression = none\n"
		if c.defaults {
			name += "/defaults"
			kafka = ""
		}
		b.Run(name, func(b *testing.B) {
			benchAgentProcess(b, bin, c.files, c.lineLen, c.rate, kafka)
		})
	}
}

// BenchmarkAgentIdle measures what tailed files that do not change cost the agent's
// process: 1, 1,000 and 10,000 files of one line each, shipped, then watched for
// b.N seconds (target: 10,000 idle files under 0.5% of a core). On a local file
// system, where events report every change, idle files are polled only every
// max_idle_interval_events (1 min) as a safety net: a window of b.N < 60 seconds
// sees no such poll; -benchtime 125x averages two rounds of them.
func BenchmarkAgentIdle(b *testing.B) {
	bin := proctest.Build(b, b.TempDir(), "broker", "logagent")
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			etcd, err := embedetcd.Start(filepath.Join(dir, "etcd"), "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer etcd.Close()
			addr := benchBroker(b, bin, dir)
			for f := 0; f < n; f++ {
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("idle%05d.log", f)), []byte("one line\n"), 0o644)
			}
			if err := etcd.Put("/logagent/bench/collect_config", fmt.Sprintf(`[{"path": %q, "topic": "bench"}]`, filepath.Join(dir, "*.log"))); err != nil {
				b.Fatal(err)
			}
			adm := benchAdmin(b, addr)
			agent := proctest.Start(b, dir, "logagent", filepath.Join(bin, "logagent"), fmt.Sprintf(
				"[agent]\nhost = bench\ndata_dir = %s\n[etcd]\nendpoints = %s\n[kafka]\nbrokers = %s\n[metrics]\nlisten =\n[logging]\nlevel = warn\n",
				filepath.Join(dir, "agent"), etcd.Endpoint(), addr))
			defer proctest.Stop(agent)
			deadline := time.Now().Add(3 * time.Minute)
			for shipped(adm) < int64(n) {
				if time.Now().After(deadline) {
					b.Fatalf("only %d of %d files shipped", shipped(adm), n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // the polls back off (see above)
			b.ResetTimer()
			cpu0, t0 := proctest.CPU(b, agent.Process.Pid), time.Now()
			time.Sleep(time.Duration(b.N) * time.Second)
			b.ReportMetric(100*(proctest.CPU(b, agent.Process.Pid)-cpu0)/time.Since(t0).Seconds(), "agent-%core")
			b.ReportMetric(proctest.PeakRSS(b, agent.Process.Pid)/(1<<20), "agent-peak-RSS-MiB")
		})
	}
}

// benchBroker runs the broker binary in bin with its data in dir until the benchmark
// ends, and returns its address.
func benchBroker(b *testing.B, bin, dir string) string {
	addr := proctest.FreeAddr(b)
	broker := proctest.Start(b, dir, "broker", filepath.Join(bin, "broker"), fmt.Sprintf(
		"[server]\nlisten = %s\n[log]\ndir = %s\nnum_partitions = 1\n[metrics]\nlisten =\n[logging]\nlevel = warn\n",
		addr, filepath.Join(dir, "broker")))
	b.Cleanup(func() { proctest.Stop(broker) })
	return addr
}

// benchAdmin returns an admin client of the broker at addr, with the topic "bench"
// created (a client that asked for it before it existed would not ask again for a
// while: kgo's metadata min age).
func benchAdmin(b *testing.B, addr string) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = adm.CreateTopic(ctx, 1, 1, nil, "bench")
		cancel()
		if err == nil {
			return adm
		}
		if time.Since(start) > 30*time.Second {
			b.Fatalf("create topic: %v", err)
		}
	}
}

func benchAgentProcess(b *testing.B, bin string, files, lineLen, rate int, kafka string) {
	dir := b.TempDir()
	etcd, err := embedetcd.Start(filepath.Join(dir, "etcd"), "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer etcd.Close()
	addr := benchBroker(b, bin, dir)

	line := strings.Repeat("x", lineLen-30)
	for f := 0; f < files; f++ {
		fh, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%03d.log", f)))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(fh, 1<<20)
		for i := f; i < b.N && rate == 0; i += files {
			fmt.Fprintf(w, "%09d 2026-11-22T10:00:00Z %s\n", i, line)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		fh.Close()
	}
	if err := etcd.Put("/logagent/bench/collect_config", fmt.Sprintf(`[{"path": %q, "topic": "bench"}]`, filepath.Join(dir, "*.log"))); err != nil {
		b.Fatal(err)
	}
	adm := benchAdmin(b, addr)

	b.ResetTimer()
	agent := proctest.Start(b, dir, "logagent", filepath.Join(bin, "logagent"), fmt.Sprintf(
		"[agent]\nhost = bench\ndata_dir = %s\n[etcd]\nendpoints = %s\n[kafka]\nbrokers = %s\n%s[metrics]\nlisten =\n[logging]\nlevel = warn\n",
		filepath.Join(dir, "agent"), etcd.Endpoint(), addr, kafka))
	defer proctest.Stop(agent)
	if rate > 0 {
		// Append to the one file at rate lines/s, in ticks of 10 ms.
		fh, err := os.OpenFile(filepath.Join(dir, "f000.log"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer fh.Close()
		perTick := rate / 100
		var chunk []byte
		for i := 0; i < perTick; i++ {
			chunk = fmt.Appendf(chunk, "%09d 2026-11-22T10:00:00Z %s\n", i, line)
		}
		next := time.Now()
		for n := 0; n < b.N; n += perTick {
			if _, err := fh.Write(chunk[:len(chunk)/perTick*min(perTick, b.N-n)]); err != nil {
				b.Fatal(err)
			}
			next = next.Add(10 * time.Millisecond)
			time.Sleep(time.Until(next))
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for shipped(adm) < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d lines in the topic after 5 minutes", shipped(adm), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	cpu, rss := proctest.CPU(b, agent.Process.Pid), proctest.PeakRSS(b, agent.Process.Pid)
	elapsed := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/elapsed, "lines/s")
	b.ReportMetric(cpu/float64(b.N)*1e6, "agent-cpu-s/Mlines")
	b.ReportMetric(cpu/elapsed, "agent-cores")
	b.ReportMetric(rss/(1<<20), "agent-peak-RSS-MiB")
}

// shipped is the number of records in the topic "bench" (0 until it exists).
func shipped(adm *kadm.Client) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "bench")
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}
