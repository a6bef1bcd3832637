package ship

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/partition"
	"github.com/logpipe/logpipe/internal/wait"
)

// acks records every acknowledgement, by token.
type acks struct {
	mu    sync.Mutex
	count map[uint64]int
	order map[string][]uint64 // by key: the tokens in the order acknowledged
	keyOf func(uint64) string
}

func newAcks(keyOf func(uint64) string) *acks {
	return &acks{count: map[uint64]int{}, order: map[string][]uint64{}, keyOf: keyOf}
}

func (a *acks) Ack(token uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count[token]++
	k := a.keyOf(token)
	a.order[k] = append(a.order[k], token)
}

func (a *acks) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.count)
}

func newProducer(t *testing.T, addr, acks string, mutate func(*Config)) *Producer {
	t.Helper()
	cfg := Config{
		Brokers: []string{addr}, RequiredAcks: acks, Compression: "none",
		MaxInFlightBytes: 1 << 20, FlushBytes: 64 << 10, FlushFrequency: 5 * time.Millisecond,
		MaxMessageBytes: 1000000, ClientID: "ship-test",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// consumed is a record as read back with kgo.
type consumed struct {
	partition int32
	key       string
	value     string
	headers   map[string]string
}

// consumeAll reads topic from the start until want records arrived (or 30 s passed).
func consumeAll(t *testing.T, addr, topic string, want int) []consumed {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []consumed
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			c := consumed{partition: r.Partition, key: string(r.Key), value: string(r.Value), headers: map[string]string{}}
			for _, h := range r.Headers {
				c.headers[h.Key] = string(h.Value)
			}
			out = append(out, c)
		})
	}
	return out
}

func record(topic, key string, i int) Record {
	h := []*sarama.RecordHeader{
		{Key: []byte("host"), Value: []byte("web-1")},
		{Key: []byte("offset"), Value: []byte(strconv.Itoa(i))},
	}
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return Record{Topic: topic, Key: k, Value: []byte(fmt.Sprintf("line %d of %s", i, key)), Headers: h, Timestamp: time.Now()}
}

// TestOrderKeysHeaders sends records under several keys with each acks setting: every
// record is acknowledged once, arrives once in the partition Kafka's default
// partitioner gives its key, in order, with its headers.
func TestOrderKeysHeaders(t *testing.T) {
	b := brokertest.Start(t, 4)
	for _, ack := range []string{"0", "1", "all"} {
		t.Run("acks="+ack, func(t *testing.T) {
			topic := "order_" + ack
			keys := []string{"web-1:/var/log/a.log", "web-1:/var/log/b.log", "web-2:/x", "k4", "k5"}
			const n = 20000
			a := newAcks(func(tok uint64) string { return keys[tok%uint64(len(keys))] })
			p := newProducer(t, b.Addr(), ack, nil)
			// The first two keys go through a Route each, as a file's records do.
			routes := []*Route{p.Route(), p.Route()}
			for i := 0; i < n; i++ {
				send := p.Send
				if k := i % len(keys); k < len(routes) {
					send = routes[k].Send
				}
				if err := send(context.Background(), record(topic, keys[i%len(keys)], i), a, uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for a.total() < n && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if err := p.Close(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if a.total() != n {
				t.Fatalf("%d of %d records acknowledged", a.total(), n)
			}
			for tok, c := range a.count {
				if c != 1 {
					t.Fatalf("record %d acknowledged %d times", tok, c)
				}
			}
			for k, toks := range a.order {
				for i := 1; i < len(toks); i++ {
					if toks[i] < toks[i-1] {
						t.Fatalf("key %s: acknowledged %d after %d", k, toks[i], toks[i-1])
					}
				}
			}
			got := consumeAll(t, b.Addr(), topic, n)
			if len(got) != n {
				t.Fatalf("consumed %d of %d", len(got), n)
			}
			last := map[string]int{}
			for _, c := range got {
				i, _ := strconv.Atoi(c.headers["offset"])
				if want := partition.ForKey([]byte(c.key), 4); c.partition != want {
					t.Fatalf("key %q in partition %d, want %d", c.key, c.partition, want)
				}
				if c.value != fmt.Sprintf("line %d of %s", i, c.key) || c.headers["host"] != "web-1" {
					t.Fatalf("record %+v", c)
				}
				if prev, ok := last[c.key]; ok && i <= prev {
					t.Fatalf("key %s: record %d after %d", c.key, i, prev)
				}
				last[c.key] = i
			}
		})
	}
}

// TestNoKeySpreads sends records without a key through a Route (Send takes the same
// path for them): they use every partition.
func TestNoKeySpreads(t *testing.T) {
	b := brokertest.Start(t, 3)
	a := newAcks(func(uint64) string { return "" })
	p := newProducer(t, b.Addr(), "1", nil)
	rt := p.Route()
	for i := 0; i < 300; i++ {
		if err := rt.Send(context.Background(), record("nokey", "", i), a, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	parts := map[int32]int{}
	for _, c := range consumeAll(t, b.Addr(), "nokey", 300) {
		parts[c.partition]++
	}
	if len(parts) != 3 || parts[0]+parts[1]+parts[2] != 300 {
		t.Fatalf("records per partition: %v", parts)
	}
}

// TestBrokerOutage stops the broker while records are sent: Send blocks once the
// in-flight budget is spent, memory stays bounded, and after the restart every record
// arrives, acknowledged once.
func TestBrokerOutage(t *testing.T) {
	b := brokertest.Start(t, 1)
	addr := b.Addr()
	a := newAcks(func(uint64) string { return "" })
	p := newProducer(t, addr, "all", func(c *Config) { c.MaxInFlightBytes = 64 << 10 })
	ctx := context.Background()
	const n = 5000
	for i := 0; i < 100; i++ {
		if err := p.Send(ctx, record("outage", "k", i), a, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 30*time.Second, "the condition", func() bool { return a.total() == 100 })
	b.Stop(t)
	sent := make(chan int, 1)
	go func() {
		i := 100
		for ; i < n; i++ {
			if err := p.Send(ctx, record("outage", "k", i), a, uint64(i)); err != nil {
				break
			}
		}
		sent <- i
	}()
	// While the broker is down, reading is held at the budget.
	wait.For(t, 30*time.Second, "the condition", func() bool { return p.InFlightBytes() > 60<<10 })
	time.Sleep(300 * time.Millisecond) // would the budget be overrun? (a check, not a sync)
	if got := p.InFlightBytes(); got > 64<<10+1024 {
		t.Fatalf("%d bytes in flight with a 64 KiB budget", got)
	}
	if a.total() != 100 {
		t.Fatalf("%d records acknowledged while the broker was down", a.total())
	}
	b.Restart(t)
	if got := <-sent; got != n {
		t.Fatalf("Send failed at record %d", got)
	}
	wait.For(t, 30*time.Second, "the condition", func() bool { return a.total() == n })
	if err := p.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	total := endOffset(t, addr, "outage")
	seen := map[string]int{}
	for _, c := range consumeAll(t, addr, "outage", int(total)) {
		seen[c.headers["offset"]]++
	}
	for i := 0; i < n; i++ {
		if seen[strconv.Itoa(i)] == 0 {
			t.Fatalf("record %d lost", i)
		}
	}
	// The producer is idempotent: the retries after the outage wrote nothing twice.
	if total != n {
		t.Fatalf("%d records in the topic for %d sent", total, n)
	}
}

// endOffset is the sum of the topic's partitions' end offsets.
func endOffset(t *testing.T, addr, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestSplitTooLarge makes the broker refuse the producer's batches as too large (the
// topic's max.message.bytes is below the producer's): batches are split until they
// fit, and every record arrives once, in order.
func TestSplitTooLarge(t *testing.T) {
	b := brokertest.Start(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	small := "4096"
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &small}, "small"); err != nil {
		t.Fatal(err)
	}
	for _, ack := range []string{"1", "all"} {
		t.Run("acks="+ack, func(t *testing.T) {
			a := newAcks(func(uint64) string { return "" })
			p := newProducer(t, b.Addr(), ack, func(c *Config) {
				c.FlushFrequency = 50 * time.Millisecond
				if ack == "1" {
					c.MaxInFlightRequests = 1 // acks=1 keeps the order through failures only so
				}
			})
			base := map[string]int{"1": 0, "all": 1000}[ack]
			for i := base; i < base+1000; i++ {
				if err := p.Send(context.Background(), record("small", "k", i), a, uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			wait.For(t, 30*time.Second, "the condition", func() bool { return a.total() == 1000 })
			if err := p.Close(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if p.Errors.Load() == 0 {
				t.Fatal("no batch was refused: the test does not test splitting")
			}
		})
	}
	got := consumeAll(t, b.Addr(), "small", 2000)
	if len(got) != 2000 {
		t.Fatalf("consumed %d of 2000", len(got))
	}
	for i, c := range got {
		if c.headers["offset"] != strconv.Itoa(i) {
			t.Fatalf("record %d is %s", i, c.headers["offset"])
		}
	}
}

// TestCloseGivesUp closes a producer whose broker is gone: Close returns within its
// timeout, reports what was not acknowledged, and acknowledges nothing.
func TestCloseGivesUp(t *testing.T) {
	b := brokertest.Start(t, 1)
	a := newAcks(func(uint64) string { return "" })
	p := newProducer(t, b.Addr(), "all", nil)
	if err := p.Send(context.Background(), record("gone", "k", 0), a, 0); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "the condition", func() bool { return a.total() == 1 })
	b.Stop(t)
	for i := 1; i < 10; i++ {
		if err := p.Send(context.Background(), record("gone", "k", i), a, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := p.Close(time.Second)
	if err == nil {
		t.Fatal("Close reported everything acknowledged")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v with a 1 s timeout", d)
	}
	if a.total() != 1 {
		t.Fatalf("%d records acknowledged", a.total())
	}
	if err := p.Send(context.Background(), record("gone", "k", 99), a, 99); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

// TestCompression produces with every codec: the broker takes the batches and a
// consumer reads every record back.
func TestCompression(t *testing.T) {
	b := brokertest.Start(t, 1)
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "codec_" + codec
			a := newAcks(func(uint64) string { return "" })
			p := newProducer(t, b.Addr(), "all", func(c *Config) { c.Compression = codec })
			for i := 0; i < 2000; i++ {
				if err := p.Send(context.Background(), record(topic, "k", i), a, uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			wait.For(t, 30*time.Second, "the condition", func() bool { return a.total() == 2000 })
			if err := p.Close(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, b.Addr(), topic, 2000)
			for i, c := range got {
				if c.value != fmt.Sprintf("line %d of k", i) {
					t.Fatalf("record %d: %q", i, c.value)
				}
			}
			if len(got) != 2000 {
				t.Fatalf("consumed %d of 2000", len(got))
			}
		})
	}
}

// runAcks is an acks that also takes runs of acknowledgements (RunAcker).
type runAcks struct {
	*acks
	calls atomic.Int64 // AckRun calls
}

func (a *runAcks) AckRun(tokens []uint64) {
	a.calls.Add(1)
	for _, tok := range tokens {
		a.Ack(tok)
	}
}

// TestRunAcker: a RunAcker is told of a batch's records at once, each exactly once
// and in order, in far fewer calls than records; plain Ackers keep Ack.
func TestRunAcker(t *testing.T) {
	b := brokertest.Start(t, 1)
	const n = 5000
	ra := &runAcks{acks: newAcks(func(uint64) string { return "a" })}
	plain := newAcks(func(uint64) string { return "b" })
	p := newProducer(t, b.Addr(), "1", nil)
	for i := 0; i < n; i++ {
		var a Acker = ra
		if i%100 == 99 {
			a = plain // breaks runs
		}
		if err := p.Send(context.Background(), record("runs", "k", i), a, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for ra.total()+plain.total() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ra.total() != n-n/100 || plain.total() != n/100 {
		t.Fatalf("acknowledged %d + %d of %d", ra.total(), plain.total(), n)
	}
	for _, a := range []*acks{ra.acks, plain} {
		for tok, c := range a.count {
			if c != 1 {
				t.Fatalf("record %d acknowledged %d times", tok, c)
			}
		}
		for k, toks := range a.order {
			for i := 1; i < len(toks); i++ {
				if toks[i] <= toks[i-1] {
					t.Fatalf("%s: acknowledged %d after %d", k, toks[i], toks[i-1])
				}
			}
		}
	}
	if c := ra.calls.Load(); c == 0 || c > int64(n/100+10)*2 {
		t.Fatalf("%d AckRun calls for %d records in runs of 99", c, ra.total())
	}
	t.Logf("%d records in %d AckRun calls", ra.total(), ra.calls.Load())
}

// TestWindowFailure fills a partition's window with a batch the broker refuses as too
// large and a small one behind it. With acks=all the small one is refused too (out of
// order), and both are sent again one at a time under the same producer identity:
// every record arrives once, in order. With acks=1 the small one is written first,
// as Kafka does with several requests in flight; still every record arrives once.
func TestWindowFailure(t *testing.T) {
	b := brokertest.Start(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	small := "4096"
	for _, ack := range []string{"all", "1"} {
		t.Run("acks="+ack, func(t *testing.T) {
			topic := "window_" + map[string]string{"all": "all", "1": "one"}[ack]
			if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &small}, topic); err != nil {
				t.Fatal(err)
			}
			a := newAcks(func(uint64) string { return "" })
			p := newProducer(t, b.Addr(), ack, nil)
			if p.window != 2 {
				t.Fatalf("window %d, want the default 2", p.window)
			}
			// One record first: the producer learns the topic and gets its identity.
			if err := p.Send(context.Background(), record(topic, "k", 0), a, 0); err != nil {
				t.Fatal(err)
			}
			wait.For(t, 10*time.Second, "the first record", func() bool { return a.total() == 1 })
			// Two sealed batches at once, so that both are in flight together.
			q := p.topics[topic].queues[0]
			big, tiny := newBatch(time.Now(), p.sc), newBatch(time.Now(), p.sc)
			for i := 1; i <= 20; i++ { // 20 records of ~300 bytes: over 4096
				r := record(topic, "k", i)
				r.Value = append(r.Value, strings.Repeat("x", 300)...)
				big.add(&r, ackRef{a, uint64(i)}, r.wireSize(), 0, p.cfg.FlushBytes)
			}
			r := record(topic, "k", 21)
			tiny.add(&r, ackRef{a, 21}, r.wireSize(), 0, p.cfg.FlushBytes)
			q.mu.Lock()
			q.ready = append(q.ready, big, tiny)
			q.mu.Unlock()
			q.signal()
			wait.For(t, 30*time.Second, "every record acknowledged", func() bool { return a.total() == 22 })
			if err := p.Close(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if p.Errors.Load() == 0 {
				t.Fatal("no request failed: the test does not test a failed window")
			}
			got := consumeAll(t, b.Addr(), topic, 22)
			if n := endOffset(t, b.Addr(), topic); n != 22 || len(got) != 22 {
				t.Fatalf("%d records in the topic, %d consumed; want 22", n, len(got))
			}
			order := make([]string, len(got))
			for i, c := range got {
				order[i] = c.headers["offset"]
			}
			a.mu.Lock()
			acked := a.order[""]
			a.mu.Unlock()
			if ack == "all" {
				for i, o := range order {
					if o != strconv.Itoa(i) {
						t.Fatalf("records in the order %v", order)
					}
				}
				if p.pid.gen != 1 {
					t.Fatalf("producer identity %d: a refused window must not start a new one", p.pid.gen)
				}
				for i, tok := range acked {
					if tok != uint64(i) {
						t.Fatalf("acknowledged in the order %v", acked)
					}
				}
			} else if order[1] != "21" {
				t.Fatalf("acks=1: records in the order %v, want the small batch written first", order)
			}
			for tok, c := range a.count {
				if c != 1 {
					t.Fatalf("record %d acknowledged %d times", tok, c)
				}
			}
		})
	}
}

// TestIdleConnectionClosedByBroker sends a record after the broker closed the
// producer's connections for being idle (as Kafka does after connections.max.idle.ms):
// the write finds the connection dead, and the record must go on a new connection at
// once, not after a retry backoff (an hour here, so that waiting for it fails the test).
func TestIdleConnectionClosedByBroker(t *testing.T) {
	b := brokertest.StartWith(t, 1, func(c *broker.Config) {
		c.Server.IdleTimeout = time.Second
		c.Metrics.Listen = "127.0.0.1:0"
	})
	p := newProducer(t, b.Addr(), "all", func(c *Config) { c.RetryBackoff = time.Hour })
	defer p.Close(time.Second)
	a := newAcks(func(uint64) string { return "" })
	ctx := context.Background()
	if err := p.Send(ctx, record("idle", "", 0), a, 0); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the first record acknowledged", func() bool { return a.total() == 1 })
	wait.For(t, 10*time.Second, "the broker to close the idle connections", func() bool {
		return b.Metric(t, `logpipe_broker_limit_hits_total{limit="idle_timeout"}`) > 0 &&
			b.Metric(t, "logpipe_broker_connections") == 0
	})
	if err := p.Send(ctx, record("idle", "", 1), a, 1); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the record sent after the connections were closed, without a retry backoff", func() bool { return a.total() == 2 })
	if got := consumeAll(t, b.Addr(), "idle", 2); len(got) != 2 {
		t.Fatalf("%d records in Kafka, want 2", len(got))
	}
}

// TestBatchDue checks when a batch that is not full goes, with the shipped
// flush_frequency 0 and with a linger set. (The benchmarks measure what this does to
// throughput and latency: one small request per answer cost a third more CPU per
// line flat out.)
func TestBatchDue(t *testing.T) {
	cases := []struct {
		name     string
		ff       time.Duration
		lastWire int64
		inflight []time.Duration // how long each request in flight has waited
		created  time.Duration   // how long ago the batch got its first record
		want     time.Duration   // -1: until an answer comes
	}{
		{"nothing in flight: at once", 0, 0, nil, 0, 0},
		{"one in flight, just sent: until 1 ms", 0, 0, []time.Duration{0}, 0, pipelineAfter},
		{"one in flight for 1 ms: at once", 0, 0, []time.Duration{pipelineAfter}, 0, 0},
		{"window full: until an answer", 0, 0, []time.Duration{5 * time.Millisecond, 0}, 0, -1},
		{"busy partition: lingers 5 ms", 0, busyBatch, nil, 0, busyLinger},
		{"busy partition: lingered enough", 0, busyBatch, []time.Duration{0}, busyLinger, 0},
		{"flush_frequency 20ms: lingers", 20 * time.Millisecond, 0, nil, 5 * time.Millisecond, 15 * time.Millisecond},
	}
	for _, c := range cases {
		now := time.Now()
		ago := func(d time.Duration) time.Time { return now.Add(-d) }
		p := &Producer{cfg: Config{FlushFrequency: c.ff}, window: 2}
		q := &queue{p: p, lastWire: c.lastWire, cur: &batch{created: ago(c.created)}}
		for _, d := range c.inflight {
			q.inflight = append(q.inflight, &flight{sent: ago(d)})
		}
		got := q.due(p.window)
		// The times count from now: allow for the time until the call.
		if c.want < 0 && got != -1 || c.want >= 0 && (got > c.want || got < c.want-900*time.Microsecond) {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}
}
