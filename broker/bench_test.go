package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
)

// The benchmarks produce and fetch 100-byte records against logpipe's broker
// and, in the same run, against franz-go's in-memory kfake, with the same
// clients and settings. Each broker runs in its own process (this test binary,
// re-executed; see TestMain), so that its CPU time and memory can be measured
// apart from the clients'. One op = one record. Besides ns/op and MB/s (record
// payload) they report records/s, the broker's CPU seconds per million records
// and its peak RSS.

const benchRecordSize = 100

// serveEnv selects, in a re-executed test binary, which broker to serve.
const serveEnv = "LOGPIPE_BENCH_SERVE"

func TestMain(m *testing.M) {
	switch os.Getenv(serveEnv) {
	case "":
		os.Exit(m.Run())
	case "logpipe":
		dir, err := os.MkdirTemp("", "logpipe-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		cfg := testConfig(dir)
		b, err := broker.Start(cfg, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("ADDR %s\n", b.Addr())
		io.Copy(io.Discard, os.Stdin) // until the benchmark closes stdin
		b.Close()
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("ADDR %s\n", c.ListenAddrs()[0])
		io.Copy(io.Discard, os.Stdin)
		c.Close()
	}
}

// benchBroker is a broker process serving a benchmark.
type benchBroker struct {
	addr  string
	pid   int
	stdin io.Closer
}

// startBenchBroker starts kind ("logpipe" or "kfake") in its own process, with
// topic created with the given partitions.
func startBenchBroker(b *testing.B, kind string, partitions int32, topic string) *benchBroker {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	bb := &benchBroker{pid: cmd.Process.Pid, stdin: stdin}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		b.Fatalf("%s broker did not start: %q %v", kind, line, err)
	}
	bb.addr = strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	createTopic(b, bb.addr, topic, partitions, nil)
	return bb
}

// procStats returns the CPU seconds a process used and its peak RSS in MiB.
func procStats(pid int) (cpu float64, peakMiB float64) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		// Fields after the parenthesised command name; utime and stime are 14 and 15.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			f := strings.Fields(string(stat[i+2:]))
			if len(f) > 12 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpu = (ut + st) / 100 // USER_HZ
			}
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
				peakMiB = kb / 1024
			}
		}
	}
	return cpu, peakMiB
}

// measure runs fn (which handles b.N records) and reports the rates.
func measure(b *testing.B, bb *benchBroker, fn func()) {
	b.SetBytes(benchRecordSize)
	b.ResetTimer()
	cpu0, _ := procStats(bb.pid)
	t0 := time.Now()
	fn()
	elapsed := time.Since(t0)
	b.StopTimer()
	cpu1, peak := procStats(bb.pid)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric((cpu1-cpu0)/float64(b.N)*1e6, "broker-cpu-s/Mrec")
	b.ReportMetric(peak, "broker-peak-RSS-MiB")
}

// kgoProduce produces n records with `producers` concurrent kgo clients.
func kgoProduce(b *testing.B, addr, topic string, n, producers int, acksAll bool) {
	kgoProduceWith(b, addr, topic, n, producers, acksAll)
}

// kgoProduceWith is kgoProduce with more client options (security).
func kgoProduceWith(b *testing.B, addr, topic string, n, producers int, acksAll bool, more ...kgo.Opt) {
	value := make([]byte, benchRecordSize)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for p := range producers {
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(256 << 10), kgo.MaxBufferedRecords(200_000), kgo.ProducerLinger(5 * time.Millisecond),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}
		if !acksAll {
			opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()))
		}
		opts = append(opts, more...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			b.Fatal(err)
		}
		share := n / producers
		if p == 0 {
			share += n % producers
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			ctx := context.Background()
			promise := func(_ *kgo.Record, err error) {
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
			for range share {
				cl.Produce(ctx, &kgo.Record{Value: value}, promise)
			}
			cl.Flush(ctx)
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d records failed: %v", failed.Load(), firstErr.Load())
	}
}

// saramaProduce produces n records with one sarama AsyncProducer.
func saramaProduce(b *testing.B, addr, topic string, n int, acksAll bool) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = false
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	if acksAll {
		cfg.Producer.RequiredAcks = sarama.WaitForAll
	}
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Flush.Bytes = 512 << 10
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.MaxMessageBytes = 1 << 20
	cfg.ChannelBufferSize = 10_000
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for err := range p.Errors() {
			if failed.Add(1) == 1 {
				firstErr = err
			}
		}
	}()
	value := sarama.ByteEncoder(make([]byte, benchRecordSize))
	for range n {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: value}
	}
	p.Close() // flushes
	<-done
	if failed.Load() > 0 {
		b.Fatalf("%d records failed: %v", failed.Load(), firstErr)
	}
}

func BenchmarkProduce(b *testing.B) {
	for _, target := range []string{"logpipe", "kfake"} {
		for _, client := range []string{"kgo", "sarama"} {
			for _, acks := range []string{"1", "all"} {
				for _, partitions := range []int32{1, 12} {
					name := fmt.Sprintf("%s/%s/acks=%s/partitions=%d", target, client, acks, partitions)
					b.Run(name, func(b *testing.B) {
						bb := startBenchBroker(b, target, partitions, "bench")
						addr := bb.addr
						measure(b, bb, func() {
							if client == "kgo" {
								kgoProduce(b, addr, "bench", b.N, 4, acks == "all")
							} else {
								saramaProduce(b, addr, "bench", b.N, acks == "all")
							}
						})
					})
				}
			}
		}
	}
}

func BenchmarkFetch(b *testing.B) {
	for _, target := range []string{"logpipe", "kfake"} {
		for _, partitions := range []int32{1, 12} {
			b.Run(fmt.Sprintf("%s/kgo/partitions=%d", target, partitions), func(b *testing.B) {
				bb := startBenchBroker(b, target, partitions, "bench")
				addr := bb.addr
				kgoProduce(b, addr, "bench", b.N, 4, false)
				cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20),
					kgo.FetchMaxPartitionBytes(8<<20), kgo.FetchMaxWait(100*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				measure(b, bb, func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					defer cancel()
					got := 0
					for got < b.N {
						fs := cl.PollFetches(ctx)
						if err := fs.Err0(); err != nil {
							b.Fatal(err)
						}
						got += fs.NumRecords()
					}
				})
			})
		}
	}
}
