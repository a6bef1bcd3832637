package logtransfer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produce writes n agent-style records to topic over its partitions: the line
// "line <i>" of file /var/log/f<i%3>.log at offset 100*i.
func produce(t testing.TB, addr, topic string, from, to int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("line %d", i)), Timestamp: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), Headers: []kgo.RecordHeader{
			{Key: "host", Value: []byte("web-1")},
			{Key: "path", Value: []byte(fmt.Sprintf("/var/log/f%d.log", i%3))},
			{Key: "offset", Value: []byte(strconv.Itoa(100 * i))},
			{Key: "file_id", Value: []byte(fmt.Sprintf("1-%d-0", i%3))},
		}})
		if len(recs) == 5000 || i == to-1 {
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

func createTopic(t testing.TB, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

func testConfig(addr, esURL string) Config {
	c := DefaultConfig()
	c.Kafka.Brokers = addr
	c.Kafka.Topics = "web_log"
	c.Kafka.SessionTimeout = 6 * time.Second
	c.Output.BulkActions = 2000
	c.Output.FlushInterval = 50 * time.Millisecond
	c.Output.BackoffMax = 500 * time.Millisecond
	c.ES.URLs = esURL
	c.Metrics.Listen = ""
	return c
}

type runningTransfer struct {
	t      *Transfer
	cancel context.CancelFunc
	done   chan error
}

func startTransfer(tb testing.TB, cfg Config) *runningTransfer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := logging.Discard()
	if os.Getenv("LOGTRANSFER_TEST_LOG") != "" {
		log, _ = logging.New(os.Stderr, "debug", "text")
	}
	tr, err := New(ctx, cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	r := &runningTransfer{t: tr, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tr.Run(ctx) }()
	tb.Cleanup(r.stop)
	return r
}

func (r *runningTransfer) stop() {
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
		<-r.done
	}
}

func startES(t testing.TB) *estest.Server {
	es, err := estest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Close)
	return es
}

// checkDocs verifies that lines from..to are each exactly one document with the
// right fields, and nothing else exists.
func checkDocs(t testing.TB, es *estest.Server, n int) {
	t.Helper()
	checkDocsIn(t, es, "web_log-*", n, func(d estest.Doc) bool { return d.Index == "web_log-2026.11.22" })
}

// fence writes one record "fence <p>" to each of topic's partitions and waits until
// the transfer has indexed them all: each partition is indexed in order, so whatever
// was written before is then indexed too, and a test can assert that nothing else
// came instead of sleeping on it. checkDocs leaves fence documents out.
func fence(t testing.TB, addr, topic string, partitions int32, es *estest.Server) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fenceN++
	id := fmt.Sprintf("fence %d.", fenceN)
	var recs []*kgo.Record
	for p := range partitions {
		recs = append(recs, &kgo.Record{Partition: p, Value: []byte(id + strconv.Itoa(int(p))), Timestamp: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 60*time.Second, "the fence records of every partition", func() bool {
		n := 0
		for _, d := range es.Docs("*") {
			if strings.Contains(string(d.Source), `"message":"`+id) {
				n++
			}
		}
		return n == int(partitions)
	})
}

// fenceN numbers the fences of a test binary; tests run one at a time.
var fenceN int

// isFence reports whether a document is a fence's.
func isFence(d estest.Doc) bool { return strings.Contains(string(d.Source), `"message":"fence `) }

// checkDocsIn is checkDocs for the indices or data streams matching pattern, each
// document's place checked by where.
func checkDocsIn(t testing.TB, es *estest.Server, pattern string, n int, where func(estest.Doc) bool) {
	t.Helper()
	var docs []estest.Doc
	for _, d := range es.Docs(pattern) {
		if !isFence(d) {
			docs = append(docs, d)
		}
	}
	if len(docs) != n {
		t.Fatalf("%d documents, want %d", len(docs), n)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		var doc struct {
			Message string                `json:"message"`
			Host    struct{ Name string } `json:"host"`
			Log     struct {
				File   struct{ Path string } `json:"file"`
				Offset int64                 `json:"offset"`
			} `json:"log"`
			Kafka struct {
				Topic string `json:"topic"`
			} `json:"kafka"`
		}
		if err := json.Unmarshal(d.Source, &doc); err != nil {
			t.Fatal(err)
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(doc.Message, "line "))
		if !where(d) || doc.Host.Name != "web-1" || doc.Log.Offset != int64(100*i) ||
			doc.Log.File.Path != fmt.Sprintf("/var/log/f%d.log", i%3) || doc.Kafka.Topic != "web_log" || seen[doc.Message] {
			t.Fatalf("document %s in %s: %s", d.ID, d.Index, d.Source)
		}
		seen[doc.Message] = true
	}
}

func TestIndexesEveryRecordOnce(t *testing.T) {
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	es := startES(t)
	const n = 100000
	produce(t, b.Addr(), "web_log", 0, n)
	r := startTransfer(t, testConfig(b.Addr(), es.URL()))
	wait.For(t, 60*time.Second, "every document", func() bool { return es.Count("*") >= n })
	checkDocs(t, es, n)
	if len(es.Templates()) != 1 {
		t.Fatal("index template not installed")
	}
	// A restart re-delivers nothing that was committed.
	r.stop()
	before := es.Indexed.Load()
	produce(t, b.Addr(), "web_log", n, n+100)
	startTransfer(t, testConfig(b.Addr(), es.URL()))
	wait.For(t, 60*time.Second, "documents after restart", func() bool { return es.Count("*") >= n+100 })
	fence(t, b.Addr(), "web_log", 6, es)
	if got := es.Indexed.Load() - before; got != 100+6 {
		t.Fatalf("restart indexed %d documents, want the 100 new ones and 6 fences", got-6)
	}
}

func TestTwoInstancesShareTheGroup(t *testing.T) {
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	es := startES(t)
	const n = 20000
	cfg := testConfig(b.Addr(), es.URL())
	startTransfer(t, cfg)
	startTransfer(t, cfg)
	produce(t, b.Addr(), "web_log", 0, n)
	wait.For(t, 60*time.Second, "every document", func() bool { return es.Count("*") >= n })
	fence(t, b.Addr(), "web_log", 6, es)
	checkDocs(t, es, n)
	if es.Overwrites.Load() > 0 {
		t.Logf("%d documents were indexed twice (a rebalance moved uncommitted records)", es.Overwrites.Load())
	}
}

// TestRetries429AndNeverCommitsAhead answers 30% of items 429 for a while and checks,
// all along, that no committed offset is past a record that is not indexed.
func TestRetries429AndNeverCommitsAhead(t *testing.T) {
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	es := startES(t)
	const n = 20000
	var rejecting atomic.Bool
	rejecting.Store(true)
	var k atomic.Int64
	es.SetItemRule(func(estest.Item) int {
		if rejecting.Load() && k.Add(1)%10 < 3 {
			return 429
		}
		return 0
	})
	produce(t, b.Addr(), "web_log", 0, n)
	startTransfer(t, testConfig(b.Addr(), es.URL()))

	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Which line sits at each Kafka offset of each partition.
	byOffset := map[[2]int64]string{}
	cons, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("web_log"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	for len(byOffset) < n {
		cons.PollFetches(context.Background()).EachRecord(func(r *kgo.Record) {
			byOffset[[2]int64{int64(r.Partition), r.Offset}] = string(r.Value)
		})
	}
	check := func() {
		offs, err := adm.FetchOffsets(context.Background(), "logtransfer")
		if err != nil {
			return
		}
		indexed := map[string]bool{}
		for _, d := range es.Docs("web_log-*") {
			var doc struct{ Message string }
			json.Unmarshal(d.Source, &doc)
			indexed[doc.Message] = true
		}
		offs.Each(func(o kadm.OffsetResponse) {
			for off := int64(0); off < o.At; off++ {
				if line := byOffset[[2]int64{int64(o.Partition), off}]; !indexed[line] {
					t.Fatalf("partition %d committed at %d but offset %d (%s) is not indexed", o.Partition, o.At, off, line)
				}
			}
		})
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		check()
	}
	rejecting.Store(false)
	wait.For(t, 60*time.Second, "every document", func() bool { return es.Count("*") >= n })
	check()
	checkDocs(t, es, n)
	if es.ItemsRejected.Load() == 0 {
		t.Fatal("no item was rejected: the test tested nothing")
	}
}

func TestElasticsearchOutage(t *testing.T) {
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	es := startES(t)
	startTransfer(t, testConfig(b.Addr(), es.URL()))
	produce(t, b.Addr(), "web_log", 0, 1000)
	wait.For(t, 30*time.Second, "documents before the outage", func() bool { return es.Count("*") >= 1000 })
	es.Down()
	produce(t, b.Addr(), "web_log", 1000, 5000)
	// The outage lasts 20 s: bulk requests fail meanwhile, retried with backoff, and no
	// offset is committed past what Elasticsearch acknowledged.
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if c := committed(t, b.Addr(), "logtransfer", "web_log"); c > 1000 {
			t.Fatalf("%d offsets committed with 1000 documents indexed", c)
		}
	}
	if err := es.Up(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 60*time.Second, "documents after the outage", func() bool { return es.Count("*") >= 5000 })
	checkDocs(t, es, 5000)
	es.SetRequestRule(func() int { return 503 })
	produce(t, b.Addr(), "web_log", 5000, 5500)
	time.Sleep(time.Second)
	es.SetRequestRule(nil)
	wait.For(t, 60*time.Second, "documents after 503s", func() bool { return es.Count("*") >= 5500 })
	checkDocs(t, es, 5500)
}

// committed is the sum of a group's committed offsets in topic.
func committed(t testing.TB, addr, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			n += o.At
		}
	})
	return n
}

// TestJSONLines decodes the lines of a topic listed in [decode] json_topics into the
// document, and indexes a line that is not JSON with the failure tagged.
func TestJSONLines(t *testing.T) {
	b := brokertest.Start(t, 1)
	es := startES(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lines := []string{`{"level":"warn","msg":"slow","ms":812}`, `not json at all`, `{"level":"info","user":{"id":7}}`}
	for _, topic := range []string{"app_json", "web_log"} {
		for _, l := range lines {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(l)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := testConfig(b.Addr(), es.URL())
	cfg.Kafka.Topics = "app_json,web_log"
	cfg.Decode.JSONTopics = "app_json"
	startTransfer(t, cfg)
	wait.For(t, 30*time.Second, "6 documents", func() bool { return es.Count("*") >= 6 })
	byMessage := map[string]map[string]any{}
	for _, d := range es.Docs("app_json-*") {
		var doc map[string]any
		if err := json.Unmarshal(d.Source, &doc); err != nil {
			t.Fatal(err)
		}
		byMessage[doc["message"].(string)] = doc
	}
	if j, _ := byMessage[lines[0]]["json"].(map[string]any); j["level"] != "warn" || j["ms"] != 812.0 {
		t.Errorf("decoded: %v", byMessage[lines[0]])
	}
	if j, _ := byMessage[lines[2]]["json"].(map[string]any); j["user"].(map[string]any)["id"] != 7.0 {
		t.Errorf("decoded: %v", byMessage[lines[2]])
	}
	if tags, _ := byMessage[lines[1]]["tags"].([]any); len(tags) != 1 || tags[0] != "_jsonparsefailure" {
		t.Errorf("not JSON: %v", byMessage[lines[1]])
	}
	for _, d := range es.Docs("web_log-*") {
		if strings.Contains(string(d.Source), `"json"`) || strings.Contains(string(d.Source), "_jsonparsefailure") {
			t.Errorf("web_log is not decoded: %s", d.Source)
		}
	}
}

func TestRejectedRecordGoesToDeadLetterTopic(t *testing.T) {
	b := brokertest.Start(t, 6)
	createTopic(t, b.Addr(), "web_log", 6)
	es := startES(t)
	es.SetItemRule(func(it estest.Item) int {
		if strings.Contains(string(it.Source), `"line 77"`) {
			return 400
		}
		return 0
	})
	produce(t, b.Addr(), "web_log", 0, 500)
	startTransfer(t, testConfig(b.Addr(), es.URL()))
	wait.For(t, 30*time.Second, "the other documents", func() bool { return es.Count("*") >= 499 })
	cons, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("web_log.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var dead *kgo.Record
	for dead == nil && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead = r })
	}
	if dead == nil || string(dead.Value) != "line 77" {
		t.Fatalf("dead-letter record %v", dead)
	}
	hdr := map[string]string{}
	for _, h := range dead.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if !strings.HasPrefix(hdr["error"], "400 mapper_parsing_exception") || hdr["original_topic"] != "web_log" || hdr["offset"] != "7700" {
		t.Fatalf("headers %v", hdr)
	}
	fence(t, b.Addr(), "web_log", 6, es)
	if es.Count("*") != 499+6 {
		t.Fatalf("%d documents, want 499 and 6 fences", es.Count("*")-6)
	}
}

func TestFileOutput(t *testing.T) {
	b := brokertest.Start(t, 3)
	createTopic(t, b.Addr(), "web_log", 3)
	dir := t.TempDir()
	cfg := testConfig(b.Addr(), "http://127.0.0.1:1")
	cfg.Output.Type = "file"
	cfg.Output.Dir = dir
	produce(t, b.Addr(), "web_log", 0, 3000)
	startTransfer(t, cfg)
	file := filepath.Join(dir, "web_log-2026.11.22.ndjson")
	lines := func() []string {
		data, _ := os.ReadFile(file)
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	wait.For(t, 30*time.Second, "3000 lines in the output file", func() bool { return len(lines()) >= 3000 })
	ids := map[string]bool{}
	for _, l := range lines() {
		var doc struct {
			ID      string `json:"_id"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(l), &doc); err != nil || doc.ID == "" || ids[doc.ID] {
			t.Fatalf("line %q: %v", l, err)
		}
		ids[doc.ID] = true
	}
}

// TestBulkSentWhileOneIsStored holds the first bulk request in Elasticsearch: records
// that arrive meanwhile must be indexed by a second bulk of the same partition sent
// at once (max_inflight 2), not after the first; the offsets are committed only once
// both are stored.
func TestBulkSentWhileOneIsStored(t *testing.T) {
	b := brokertest.Start(t, 1)
	createTopic(t, b.Addr(), "web_log", 1)
	es := startES(t)
	held, release := make(chan struct{}), make(chan struct{})
	var requests atomic.Int32
	es.SetRequestRule(func() int {
		if requests.Add(1) == 1 {
			close(held)
			<-release
		}
		return 0
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	cfg := testConfig(b.Addr(), es.URL())
	cfg.Output.FlushInterval = time.Hour // only "no more records waiting" sends a bulk
	startTransfer(t, cfg)
	produce(t, b.Addr(), "web_log", 0, 10)
	wait.For(t, 30*time.Second, "the first bulk request to be held", func() bool {
		select {
		case <-held:
			return true
		default:
			return false
		}
	})
	produce(t, b.Addr(), "web_log", 10, 20)
	wait.For(t, 10*time.Second, "the records produced while the first bulk is held to be indexed", func() bool { return es.Count("*") >= 10 })
	if c := committed(t, b.Addr(), "logtransfer", "web_log"); c > 0 {
		t.Fatalf("offset %d committed while the first bulk is not stored", c)
	}
	close(release)
	wait.For(t, 10*time.Second, "every document", func() bool { return es.Count("*") == 20 })
	checkDocs(t, es, 20)
	wait.For(t, 10*time.Second, "the offsets committed", func() bool { return committed(t, b.Addr(), "logtransfer", "web_log") == 20 })
}
