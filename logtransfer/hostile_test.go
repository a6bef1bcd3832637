package logtransfer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/recordbatch"
	"github.com/logpipe/logpipe/internal/recordbatch/rbtest"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// produceRawBatch sends batch, bytes as built by rbtest, to topic/partition with a
// raw Produce request: no client re-encodes it. It returns the broker's error code as
// an error (nil: stored). Tests that need the bytes served by a broker that stores
// anything call it; to serve them another way, swap this function.
func produceRawBatch(t testing.TB, addr, topic string, partition int32, batch []byte) error {
	t.Helper()
	// Kafka 2.8's versions: Produce by topic name, not topic id.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(kversion.V2_8_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// producePartition writes agent-style records from..to-1 ("line <i>") to one
// partition, in batches of 50.
func producePartition(t testing.TB, addr, topic string, partition int32, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Partition: partition, Value: []byte(fmt.Sprintf("line %d", i)), Timestamp: time.Now(), Headers: []kgo.RecordHeader{
			{Key: "host", Value: []byte("web-1")}, {Key: "path", Value: []byte("/var/log/hostile.log")},
			{Key: "offset", Value: []byte(strconv.Itoa(i))}, {Key: "file_id", Value: []byte("1-1-0")},
		}})
		if len(recs) == 50 || i == to-1 {
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// peakHeap samples the Go heap in use until stop is closed, and reports its peak.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// testUndecodableBatch stores, on partition 1 of 3, good records, the bad batch, and
// more good records, with good records on the other partitions before and after; the
// transfer must index every good record of every partition, skip the bad batch once
// (metric and log), commit to the end, and stay within a heap bound.
//
// It runs against logpipe's broker (which stored such batches when this was written;
// once it validates records on produce, that case is skipped) and against franz-go's
// kfake, which checks batch framing and CRC but stores records undecoded, as a broker
// that stores anything would.
func testUndecodableBatch(t *testing.T, bad []byte) {
	testBadBatch(t, bad, func(r *runningTransfer) float64 { return counterValue(r.t.m.batchesSkipped) })
}

// testBadBatch is testUndecodableBatch with the counter that must count the bad batch
// once.
func testBadBatch(t *testing.T, bad []byte, skipped func(*runningTransfer) float64) {
	t.Run("logpipe-broker refuses it", func(t *testing.T) {
		// logpipe's broker validates every record on produce: the batch is
		// refused (INVALID_RECORD or CORRUPT_MESSAGE) and never served.
		b := brokertest.Start(t, 3)
		createTopic(t, b.Addr(), "web_log", 3)
		if err := produceRawBatch(t, b.Addr(), "web_log", 1, bad); err == nil {
			t.Fatal("logpipe's broker stored a batch no client can decode")
		}
	})
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "web_log"), kfake.SeedTopics(1, "web_log.dlq"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		undecodableBatch(t, c.ListenAddrs()[0], bad, skipped)
	})
}

func undecodableBatch(t *testing.T, addr string, bad []byte, skipped func(*runningTransfer) float64) {
	b := struct{ Addr func() string }{func() string { return addr }}
	es := startES(t)
	line := 0
	for p := int32(0); p < 3; p++ {
		producePartition(t, b.Addr(), "web_log", p, line, line+200)
		line += 200
	}
	if err := produceRawBatch(t, b.Addr(), "web_log", 1, bad); err != nil {
		t.Fatalf("kfake refused the batch: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		producePartition(t, b.Addr(), "web_log", p, line, line+200)
		line += 200
	}
	const want = 1200
	stop := make(chan struct{})
	peak := peakHeap(stop)
	start := time.Now()
	goroutines := runtime.NumGoroutine()
	r := startTransfer(t, testConfig(b.Addr(), es.URL()))
	wait.For(t, 30*time.Second, "every good record", func() bool { return es.Count("*") >= want })
	took := time.Since(start)
	wait.For(t, 10*time.Second, "the commit past the bad batch", func() bool { return committed(t, b.Addr(), "logtransfer", "web_log") == want+1 })
	close(stop)
	heap := <-peak
	if n := es.Count("*"); n != want {
		t.Fatalf("%d documents, want %d", n, want)
	}
	seen := map[string]bool{}
	for _, d := range es.Docs("web_log-*") {
		var doc struct{ Message string }
		if err := json.Unmarshal(d.Source, &doc); err != nil {
			t.Fatal(err)
		}
		seen[doc.Message] = true
	}
	for i := range want {
		if !seen[fmt.Sprintf("line %d", i)] {
			t.Fatalf("line %d not indexed", i)
		}
	}
	if n := skipped(r); n != 1 {
		t.Fatalf("%v batches skipped, want 1", n)
	}
	if counterValue(r.t.m.batchesSkipped) == 1 {
		// The transfer's own skip also dead-letters the batch's bytes.
		dead := readDLQ(t, addr, "web_log.dlq")
		hdr := map[string]string{}
		for _, h := range dead.Headers {
			hdr[h.Key] = string(h.Value)
		}
		// The broker sets the base offset and the leader epoch; the rest is as sent.
		if len(dead.Value) != len(bad) || !bytes.Equal(dead.Value[16:], bad[16:]) || hdr["original_partition"] != "1" || hdr["original_offset"] != "200" ||
			!strings.HasPrefix(hdr["error"], "undecodable record batch, offsets 200-200: ") {
			t.Fatalf("dead letter %q %v", dead.Value, hdr)
		}
	}
	running := runtime.NumGoroutine()
	r.stop()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines+4 {
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines 10 s after the transfer stopped, %d before it started", runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("all %d good records indexed in %v; %v records rescued by the transfer's decoder; peak heap %d MiB; goroutines %d before, %d running, %d after stop",
		want, took.Round(time.Millisecond), counterValue(r.t.m.recordsRescued), heap>>20, goroutines, running, runtime.NumGoroutine())
	if heap > 256<<20 {
		t.Fatalf("peak heap %d MiB", heap>>20)
	}
}

// TestZstdBombIsSkipped: a 79-byte zstd batch declaring 60 GiB must neither kill the
// transfer (sarama's decompression is bounded) nor stall the topic.
func TestZstdBombIsSkipped(t *testing.T) {
	bomb := rbtest.ZstdBombBatch(60 << 30)
	if len(bomb) != 79 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	testUndecodableBatch(t, bomb)
}

// TestOverlongVarintIsSkipped: one batch with a valid CRC whose record holds an
// overlong varint fails sarama's whole fetch; the good records on every partition are
// indexed all the same.
func TestOverlongVarintIsSkipped(t *testing.T) {
	testUndecodableBatch(t, rbtest.OverlongVarintBatch())
}

// TestJSONWithNewlinesIndexedOnce: JSON lines whose values hold raw newlines between
// tokens are indexed as one document each, written once, and the partition commits.
func TestJSONWithNewlinesIndexedOnce(t *testing.T) {
	b := brokertest.Start(t, 1)
	es := startES(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("app_json"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 51 {
		v := fmt.Sprintf("{\"i\":%d}", i)
		if i%17 == 0 {
			v = fmt.Sprintf("{\n\"i\"\n:\n%d,\n\"x\":\n{\"index\":{\"_index\":\"victim\"}}\n}", i)
		}
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(b.Addr(), es.URL())
	cfg.Kafka.Topics = "app_json"
	cfg.Decode.JSONTopics = "app_json"
	startTransfer(t, cfg)
	wait.For(t, 30*time.Second, "51 documents", func() bool { return es.Count("*") >= 51 })
	wait.For(t, 10*time.Second, "the commit", func() bool { return committed(t, b.Addr(), "logtransfer", "app_json") == 51 })
	if n, w := es.Count("*"), es.Indexed.Load(); n != 51 || w != 51 || es.Count("victim") != 0 {
		t.Fatalf("%d documents, %d writes, %d in victim", n, w, es.Count("victim"))
	}
	for _, d := range es.Docs("app_json-*") {
		if strings.Contains(string(d.Source), "\n") {
			t.Fatalf("raw newline in %s", d.Source)
		}
	}
}

// TestFarFutureTimestampReplaced: a record stamped years ahead is indexed in today's
// index with its own timestamp kept, and counted.
func TestFarFutureTimestampReplaced(t *testing.T) {
	b := brokertest.Start(t, 1)
	es := startES(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("web_log"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	future := time.Now().AddDate(30, 0, 0)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("from the future"), Timestamp: future},
		&kgo.Record{Value: []byte("now"), Timestamp: time.Now()}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := startTransfer(t, testConfig(b.Addr(), es.URL()))
	wait.For(t, 30*time.Second, "2 documents", func() bool { return es.Count("*") >= 2 })
	today := "web_log-" + time.Now().UTC().Format("2006.01.02")
	if es.Count(today) != 2 {
		t.Fatalf("%d documents in %s, want both", es.Count(today), today)
	}
	for _, d := range es.Docs(today) {
		var doc struct {
			Message string
			Kafka   struct{ Timestamp *int64 }
		}
		json.Unmarshal(d.Source, &doc)
		if (doc.Message == "from the future") != (doc.Kafka.Timestamp != nil) || (doc.Kafka.Timestamp != nil && *doc.Kafka.Timestamp != future.UnixMilli()) {
			t.Fatalf("%s", d.Source)
		}
	}
	if n := counterValue(r.t.m.timestampsReplaced); n != 1 {
		t.Fatalf("%v timestamps replaced", n)
	}
}

// TestOversizedDeadLetterTruncated: a record Elasticsearch rejects, larger than the
// dead-letter producer's limit, goes to the DLQ truncated (and says so), and the
// partition moves on.
func TestOversizedDeadLetterTruncated(t *testing.T) {
	b := brokertest.Start(t, 1)
	es := startES(t)
	es.SetItemRule(func(it estest.Item) int {
		if strings.Contains(string(it.Source), "HUGE") {
			return 400
		}
		return 0
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("web_log"), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Within the broker's default limit (1,048,588 bytes a batch), beyond the dead-letter
	// default (1,000,000 bytes a record).
	huge := "HUGE" + strings.Repeat("x", 1_040_000)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(huge)}, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := startTransfer(t, testConfig(b.Addr(), es.URL()))
	wait.For(t, 30*time.Second, "the record after", func() bool { return es.Count("*") >= 1 })
	wait.For(t, 10*time.Second, "the commit", func() bool { return committed(t, b.Addr(), "logtransfer", "web_log") == 2 })
	dead := readDLQ(t, b.Addr(), "web_log.dlq")
	if len(dead.Value) >= 1_000_000 || !strings.HasPrefix(string(dead.Value), "HUGE") {
		t.Fatalf("dead letter %v", dead)
	}
	hdr := map[string]string{}
	for _, h := range dead.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if hdr["truncated"] != strconv.Itoa(len(huge)) || hdr["original_offset"] != "0" {
		t.Fatalf("headers %v", hdr)
	}
	if n := counterValue(r.t.m.dlqTruncated); n != 1 {
		t.Fatalf("%v truncated", n)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestDeadLetterShrinksToBrokerLimit: when the dead-letter topic takes less than
// [kafka] dlq_max_message_bytes, the copy is cut down until it fits; when not even
// the headers fit, the record is logged, counted and skipped. Either way the
// partition goes on and commits.
func TestDeadLetterShrinksToBrokerLimit(t *testing.T) {
	for _, c := range []struct {
		topicMax string
		dropped  bool
	}{{"60000", false}, {"1000", true}} {
		t.Run(c.topicMax, func(t *testing.T) {
			b := brokertest.Start(t, 1)
			es := startES(t)
			es.SetItemRule(func(it estest.Item) int {
				if strings.Contains(string(it.Source), "HUGE") {
					return 400
				}
				return 0
			})
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("web_log"))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &c.topicMax}, "web_log.dlq"); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("HUGE" + strings.Repeat("x", 500_000))}, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			r := startTransfer(t, testConfig(b.Addr(), es.URL()))
			wait.For(t, 30*time.Second, "the commit past the rejected record", func() bool { return committed(t, b.Addr(), "logtransfer", "web_log") == 2 })
			if es.Count("*") != 1 {
				t.Fatalf("%d documents", es.Count("*"))
			}
			if got := counterValue(r.t.m.dlqDropped) == 1; got != c.dropped {
				t.Fatalf("dropped %v, want %v", got, c.dropped)
			}
			if !c.dropped && (counterValue(r.t.m.dlqTruncated) != 1 || counterValue(r.t.m.deadLettered) != 1) {
				t.Fatalf("truncated %v, dead-lettered %v", counterValue(r.t.m.dlqTruncated), counterValue(r.t.m.deadLettered))
			}
		})
	}
}

// TestRecordPastBatchEndIsSkipped: a record whose length runs past its batch.
func TestRecordPastBatchEndIsSkipped(t *testing.T) {
	testUndecodableBatch(t, rbtest.RecordPastEndBatch())
}

// TestValuePastRecordEndIsSkipped: a value whose length runs past its record looks to
// sarama like a batch cut short by the fetch size; it asks for more (no error) until
// [kafka] max_decompressed_batch_bytes, then reports the batch too large, and the
// Kafka client moves past it (one offset per error), counted.
func TestValuePastRecordEndIsSkipped(t *testing.T) {
	testBadBatch(t, rbtest.ValuePastEndBatch(), func(r *runningTransfer) float64 { return counterValue(r.t.m.offsetsSkipped) })
}

// readDLQ is the first record of a dead-letter topic.
func readDLQ(t *testing.T, addr, topic string) *kgo.Record {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dead *kgo.Record
	for dead == nil && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if dead == nil {
				dead = r
			}
		})
	}
	if dead == nil {
		t.Fatalf("nothing in %s", topic)
	}
	return dead
}

// TestRescueIsBounded: the records a probe keeps are bounded by [kafka]
// max_decompressed_batch_bytes however well they compress; past it, the probe stops
// at a batch boundary short of the bad batch, and the next probe goes on from there.
func TestRescueIsBounded(t *testing.T) {
	// kfake stores what logpipe's broker would refuse.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "web_log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := struct{ Addr func() string }{func() string { return c.ListenAddrs()[0] }}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("a"), 200<<10)
	for i := 0; i < 10; i++ { // 2 MB of records in a few hundred bytes
		batch := rbtest.Batch(0, recordbatch.Zstd, 1, 0, enc.EncodeAll(rbtest.Record(0, nil, value), nil))
		if err := produceRawBatch(t, b.Addr(), "web_log", 0, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := produceRawBatch(t, b.Addr(), "web_log", 0, rbtest.OverlongVarintBatch()); err != nil {
		t.Fatalf("kfake refused the batch: %v", err)
	}
	cfg := testConfig(b.Addr(), "http://127.0.0.1:1")
	cfg.Output.Type, cfg.Output.Dir = "file", t.TempDir()
	cfg.Kafka.MaxDecompressedBatchBytes = 1 << 20
	tr, err := New(context.Background(), cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.raw.close()
	ctx := context.Background()
	r, err := tr.probe(ctx, "web_log", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, m := range r.records {
		kept += len(m.Value)
	}
	// It keeps batches until the limit is passed: at most the limit and one batch.
	if !r.found || len(r.skipped) != 0 || r.next != 6 || kept > 1<<20+200<<10 {
		t.Fatalf("first probe: found %v, skipped %d, next %d, %d bytes kept in %d records", r.found, len(r.skipped), r.next, kept, len(r.records))
	}
	r, err = tr.probe(ctx, "web_log", 0, r.next)
	if err != nil {
		t.Fatal(err)
	}
	if !r.found || len(r.skipped) != 1 || r.skipped[0].BaseOffset != 10 || r.next != 11 || len(r.records) != 4 || r.records[0].Offset != 6 {
		t.Fatalf("second probe: found %v, skipped %d, next %d, %d records", r.found, len(r.skipped), r.next, len(r.records))
	}
	// Past the bad batch nothing is wrong.
	if r, err = tr.probe(ctx, "web_log", 0, 11); err != nil || r.found {
		t.Fatalf("third probe: %+v %v", r, err)
	}
}
