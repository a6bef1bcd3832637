package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/broker/status"
	"github.com/logpipe/logpipe/broker/storage"
	"github.com/logpipe/logpipe/internal/logging"
)

// scene is a broker with two topics and a consumer group that committed part of one.
type scene struct {
	b       *broker.Broker
	url     string
	member  *kgo.Client
	groupID string
}

// newScene starts a broker with its status page, creates "app-logs" (3 partitions,
// 100 records each) and "audit" (1 partition, 50 records), and runs a one-member
// group "indexer" on app-logs that read everything and committed 100 of partition 0
// and 40 of partition 1 (lag 60, partition 2 uncommitted).
func newScene(t *testing.T) *scene {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Log.Dir = t.TempDir()
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Group.InitialRebalanceDelay = 0
	b, err := broker.Start(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s := &scene{b: b, url: "http://" + b.MetricsAddr(), groupID: "indexer"}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "app-logs"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "audit"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 100; i++ {
			recs = append(recs, &kgo.Record{Topic: "app-logs", Partition: p, Value: fmt.Appendf(nil, "app line %d of partition %d", i, p)})
		}
	}
	for i := 0; i < 50; i++ {
		recs = append(recs, &kgo.Record{Topic: "audit", Value: fmt.Appendf(nil, "audit %d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	s.member, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(s.groupID), kgo.ConsumeTopics("app-logs"),
		kgo.DisableAutoCommit(), kgo.ClientID("indexer-1"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.member.Close)
	for got := 0; got < 300; {
		fs := s.member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 300", got)
		}
		got += fs.NumRecords()
	}
	commit := map[string]map[int32]kgo.EpochOffset{"app-logs": {0: {Epoch: -1, Offset: 100}, 1: {Epoch: -1, Offset: 40}}}
	var cerr error
	s.member.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = err
		if err == nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
						cerr = e
					}
				}
			}
		}
	})
	if cerr != nil {
		t.Fatal(cerr)
	}
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStatusJSONAndHTML checks what the page reports against what the scene did.
func TestStatusJSONAndHTML(t *testing.T) {
	s := newScene(t)
	code, body := get(t, s.url+"/status.json")
	if code != 200 {
		t.Fatalf("/status.json: %d %s", code, body)
	}
	var st status.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	topics := map[string]status.TopicStatus{}
	for _, tp := range st.Topics {
		topics[tp.Name] = tp
	}
	app, audit := topics["app-logs"], topics["audit"]
	if len(app.Partitions) != 3 || app.Records != 300 || len(audit.Partitions) != 1 || audit.Records != 50 {
		t.Fatalf("topics: %+v", st.Topics)
	}
	for _, p := range app.Partitions {
		if p.StartOffset != 0 || p.EndOffset != 100 || p.SizeBytes <= 0 {
			t.Fatalf("app-logs partition %+v", p)
		}
	}
	if app.RecordsInPerSec <= 0 || app.RecordsOutPerSec <= 0 || audit.RecordsInPerSec <= 0 || audit.RecordsOutPerSec != 0 {
		t.Fatalf("rates: app-logs in %v out %v, audit in %v out %v", app.RecordsInPerSec, app.RecordsOutPerSec, audit.RecordsInPerSec, audit.RecordsOutPerSec)
	}
	if !topics["__consumer_offsets"].Internal || st.Topics[len(st.Topics)-1].Name != "__consumer_offsets" {
		t.Fatalf("internal topic not marked or not last: %+v", st.Topics)
	}
	if st.Disk.UsedBytes <= app.SizeBytes || st.Disk.SizeBytes == 0 || st.Disk.FreeBytes == 0 {
		t.Fatalf("disk: %+v", st.Disk)
	}
	if len(st.Groups) != 1 {
		t.Fatalf("groups: %+v", st.Groups)
	}
	g := st.Groups[0]
	if g.ID != "indexer" || g.State != "Stable" || len(g.Members) != 1 || g.Members[0].ClientID != "indexer-1" || g.Members[0].Assigned != "app-logs: 0,1,2" {
		t.Fatalf("group: %+v", g)
	}
	want := []status.GroupPartition{{Topic: "app-logs", Partition: 0, Committed: 100, End: 100, Lag: 0}, {Topic: "app-logs", Partition: 1, Committed: 40, End: 100, Lag: 60},
		{Topic: "app-logs", Partition: 2, Committed: -1, End: 100, Lag: -1}} // assigned, never committed
	if fmt.Sprint(g.Partitions) != fmt.Sprint(want) || g.Lag != 60 {
		t.Fatalf("group partitions %+v lag %d, want %+v lag 60", g.Partitions, g.Lag, want)
	}

	code, page := get(t, s.url+"/")
	if code != 200 {
		t.Fatalf("/: %d", code)
	}
	for _, want := range []string{`data-topic="app-logs"`, `data-topic="audit"`, `data-group="indexer"`, "indexer-1", "app-logs: 0,1,2", `<span class="lag total-lag">60</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if code, _ := get(t, s.url+"/nope"); code != 404 {
		t.Errorf("/nope: %d", code)
	}
	if code, body := get(t, s.url+"/metrics"); code != 200 || !strings.Contains(body, "logpipe_broker_records_in_total") {
		t.Errorf("/metrics: %d", code)
	}
}

// TestRatesOverTheLastMinute drives the sampler with a fake clock: the rate covers
// the last minute, not the time since start.
func TestRatesOverTheLastMinute(t *testing.T) {
	store, err := storage.Open(storage.Options{Dir: t.TempDir(), Defaults: storage.DefaultTopicConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.CreateTopic("t", 1, storage.DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	counts := server.Traffic{}
	p := status.New(status.Config{
		Store:   store,
		Traffic: func() map[string]server.Traffic { return map[string]server.Traffic{"t": counts} },
		Now:     func() time.Time { return now },
	})
	// 10 minutes at 100 records/s in, then 2 minutes at 10 records/s.
	for i := 0; i < 600; i++ {
		now = now.Add(time.Second)
		counts.RecordsIn += 100
		p.Sample()
	}
	for i := 0; i < 120; i++ {
		now = now.Add(time.Second)
		counts.RecordsIn += 10
		counts.RecordsOut += 5
		p.Sample()
	}
	ts := p.Snapshot().Topics[0]
	if ts.RecordsInPerSec != 10 || ts.RecordsOutPerSec != 5 {
		t.Fatalf("rates in %v out %v, want 10 and 5", ts.RecordsInPerSec, ts.RecordsOutPerSec)
	}
}

// TestChromium loads the page in headless Chromium and checks the rendered DOM, and
// keeps a screenshot (in $LOGPIPE_ARTIFACTS, or testdata/artifacts).
func TestChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/run installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	s := newScene(t)
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"}
	run := func(extra ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := append(append(append([]string{}, flags...), "--user-data-dir="+t.TempDir()), extra...)
		cmd := exec.CommandContext(ctx, bin, append(args, s.url+"/")...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return out
	}
	dom := string(run("--dump-dom"))
	for _, want := range []string{
		`<tr class="topic" data-topic="app-logs">`, `<tr class="topic" data-topic="audit">`,
		`data-topic="app-logs" data-partition="1"`, `<td class="n end">100</td>`, `<td class="n end">50</td>`,
		`data-group="indexer"`, "indexer-1", `<span class="lag total-lag">60</span>`,
		`<td class="n lag-cell lag">60</td>`,
		`data-topic="app-logs" data-partition="2"><td>app-logs</td><td class="n">2</td><td class="n">-</td><td class="n">100</td><td class="n lag-cell ok">-</td>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	dir := os.Getenv("LOGPIPE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, err := filepath.Abs(filepath.Join(dir, "broker-status.png"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(shot)
	run("--screenshot="+shot, "--window-size=1280,1100")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

// The data directory is walked at most once per status.DiskInterval, however many
// requests come at once.
func TestDiskWalkCached(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.Open(storage.Options{Dir: filepath.Join(dir, "log"), Defaults: storage.DefaultTopicConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := 0; i < 2000; i++ { // enough files that a walk takes a while
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := status.New(status.Config{Store: store, Traffic: func() map[string]server.Traffic { return nil }, DataDir: dir, Now: clock})
	srv := httptest.NewServer(p)
	defer srv.Close()

	used := func() int64 {
		resp, err := http.Get(srv.URL + "/status.json")
		if err != nil {
			t.Error(err)
			return -1
		}
		defer resp.Body.Close()
		var st status.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Error(err)
		}
		return st.Disk.UsedBytes
	}
	const n = 64
	var wg sync.WaitGroup
	results := make([]int64, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = used() }()
	}
	wg.Wait()
	for _, u := range results {
		if u != 2000 {
			t.Fatalf("used bytes %d, want 2000 (%v)", u, results)
		}
	}
	if w := status.DiskWalks(p); w != 1 {
		t.Fatalf("%d concurrent requests walked the directory %d times", n, w)
	}
	os.WriteFile(filepath.Join(dir, "new"), []byte("12345"), 0o644)
	if u := used(); u != 2000 || status.DiskWalks(p) != 1 {
		t.Fatalf("within the interval: used %d, %d walks", u, status.DiskWalks(p))
	}
	mu.Lock()
	now = now.Add(status.DiskInterval)
	mu.Unlock()
	if u := used(); u != 2005 || status.DiskWalks(p) != 2 {
		t.Fatalf("after the interval: used %d, %d walks", u, status.DiskWalks(p))
	}
	t.Logf("%d concurrent requests, then 2 more: %d walks", n, status.DiskWalks(p))
}
