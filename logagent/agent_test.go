package logagent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/brokertest"
	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// env is a real etcd server and a real broker for one test.
type env struct {
	t      testing.TB
	dir    string
	etcd   *embedetcd.Server
	etcdDr string
	cli    *clientv3.Client
	broker *brokertest.Broker
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), etcdDr: t.TempDir()}
	var err error
	if e.etcd, err = embedetcd.Start(e.etcdDr, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.etcd.Close() })
	if e.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{e.etcd.Endpoint()}, DialTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.Close() })
	e.broker = brokertest.Start(t, 3)
	return e
}

// config is the shipped configuration (see defaults), with a shorter shutdown
// timeout.
func (e *env) config(dataDir string) Config {
	c := e.defaults(dataDir)
	c.Agent.ShutdownTimeout = 5 * time.Second
	return c
}

func (e *env) put(value string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.cli.Put(ctx, "/logagent/web-1/collect_config", value); err != nil {
		e.t.Fatal(err)
	}
}

// running is an agent running in the test process.
type running struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, cfg Config) *running {
	t.Helper()
	a, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop in 30s")
	}
}

// consumed is what the tests check of a consumed record.
type consumed struct {
	topic, key, value, host, path, fileID string
	offset                                int64
	split                                 bool
	headers                               map[string]string // every header
}

// consumer reads topics from the start and collects every record.
type consumer struct {
	mu   sync.Mutex
	recs []consumed
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}
}

func consume(t *testing.T, addr string, topics ...string) *consumer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation(), kgo.MetadataMinAge(50*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cl: cl, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				rec := consumed{topic: r.Topic, key: string(r.Key), value: string(r.Value), headers: map[string]string{}}
				for _, h := range r.Headers {
					rec.headers[h.Key] = string(h.Value)
					switch h.Key {
					case "host":
						rec.host = string(h.Value)
					case "path":
						rec.path = string(h.Value)
					case "offset":
						rec.offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
					case "file_id":
						rec.fileID = string(h.Value)
					case "split":
						rec.split = true
					}
				}
				c.mu.Lock()
				c.recs = append(c.recs, rec)
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done; cl.Close() })
	return c
}

func (c *consumer) records() []consumed {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]consumed(nil), c.recs...)
}

// countLines returns how many records carry each value of path's lines.
func linesOf(recs []consumed, path string) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		if r.path == path {
			m[r.value]++
		}
	}
	return m
}

func appendLines(t *testing.T, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s line %06d\n", prefix, i)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

// wantExactly checks that lines from..to of prefix in path arrived exactly once each.
func wantExactly(t *testing.T, recs []consumed, path, prefix string, from, to int) {
	t.Helper()
	got := linesOf(recs, path)
	for i := from; i < to; i++ {
		if n := got[fmt.Sprintf("%s line %06d", prefix, i)]; n != 1 {
			t.Fatalf("%s: line %d arrived %d times", path, i, n)
		}
	}
}

func TestAgentShipsLiveConfig(t *testing.T) {
	e := newEnv(t)
	a := filepath.Join(e.dir, "a.log")
	b := filepath.Join(e.dir, "b.log")
	appendLines(t, a, "a", 0, 100)
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}]`, a))
	c := consume(t, e.broker.Addr(), "web_log", "app_log")
	dataDir := t.TempDir()
	ag := start(t, e.config(dataDir))

	wait.For(t, 20*time.Second, "the first 100 lines", func() bool { return len(linesOf(c.records(), a)) == 100 })
	recs := c.records()
	wantExactly(t, recs, a, "a", 0, 100)
	var off int64
	for _, r := range recs {
		if r.topic != "web_log" || r.key != "web-1:"+a || r.host != "web-1" || r.fileID == "" {
			t.Fatalf("record %+v", r)
		}
		if r.offset != off {
			t.Fatalf("offset header %d, want %d (lines out of order?)", r.offset, off)
		}
		off += int64(len(r.value)) + 1
	}

	// Per-file metrics count what was read and acknowledged.
	wait.For(t, 10*time.Second, "metrics of the acknowledged lines", func() bool {
		return metricValue(t, ag.a, "logagent_lines_acked_total", a) == 100 && metricValue(t, ag.a, "logagent_bytes_acked_total", a) == float64(off)
	})
	if metricValue(t, ag.a, "logagent_lines_read_total", a) != 100 || metricValue(t, ag.a, "logagent_lag_bytes", a) != 0 {
		t.Fatal("read or lag metrics wrong")
	}

	// A path added live is shipped within a second or so.
	appendLines(t, b, "b", 0, 10)
	added := time.Now()
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "app_log"}]`, a, b))
	wait.For(t, 10*time.Second, "lines of the added path", func() bool { return len(linesOf(c.records(), b)) == 10 })
	t.Logf("added path shipped %v after the etcd put", time.Since(added).Round(time.Millisecond))

	// An invalid value is rejected; the previous config keeps shipping.
	e.put(`[{"path": "relative.log", "topic": "web_log"}`)
	appendLines(t, a, "a", 100, 150)
	wait.For(t, 10*time.Second, "lines after an invalid config", func() bool { return len(linesOf(c.records(), a)) == 150 })

	// etcd restarts: the watch recovers and a removal takes effect.
	addr := e.etcd.Endpoint()
	e.etcd.Close()
	var err error
	if e.etcd, err = embedetcd.Start(e.etcdDr, addr); err != nil {
		t.Fatal(err)
	}
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "app_log"}]`, b))
	wait.For(t, 20*time.Second, "the removal to apply", func() bool {
		ag.a.mu.Lock()
		defer ag.a.mu.Unlock()
		_, ok := ag.a.entries[a]
		return !ok
	})
	appendLines(t, a, "a", 150, 160)
	appendLines(t, b, "b", 10, 20)
	wait.For(t, 10*time.Second, "lines of b after the etcd restart", func() bool { return len(linesOf(c.records(), b)) == 20 })
	time.Sleep(200 * time.Millisecond) // ten poll intervals for a stray line of a to show up
	if n := len(linesOf(c.records(), a)); n != 150 {
		t.Fatalf("removed path still shipped: %d lines", n)
	}

	// Restart the agent: nothing is re-shipped, new lines are.
	ag.stop(t)
	appendLines(t, b, "b", 20, 30)
	ag = start(t, e.config(dataDir))
	wait.For(t, 20*time.Second, "lines after the agent restart", func() bool { return len(linesOf(c.records(), b)) == 30 })
	time.Sleep(200 * time.Millisecond)
	wantExactly(t, c.records(), b, "b", 0, 30)
	ag.stop(t)

	// etcd down at boot: the cached config runs.
	e.etcd.Close()
	appendLines(t, b, "b", 30, 40)
	cfg := e.config(dataDir)
	cfg.Etcd.DialTimeout = time.Second
	start(t, cfg)
	wait.For(t, 20*time.Second, "lines shipped from the cached config", func() bool { return len(linesOf(c.records(), b)) == 40 })
	wantExactly(t, c.records(), b, "b", 0, 40)
}

func TestAgentRotation(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.dir, "app.log")
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "app_log"}]`, path))
	c := consume(t, e.broker.Addr(), "app_log")
	start(t, e.config(t.TempDir()))

	total := 0
	write := func(n int) {
		appendLines(t, path, "r", total, total+n)
		total += n
	}
	write(50)
	wait.For(t, 20*time.Second, "first lines", func() bool { return len(linesOf(c.records(), path)) > 0 })
	// rename + create, with lines still written to the old file after the rename
	os.Rename(path, path+".1")
	appendLines(t, path+".1", "r", total, total+20)
	total += 20
	write(30)
	wait.For(t, 20*time.Second, "lines across the rename", func() bool { return len(linesOf(c.records(), path)) == total })
	// copytruncate: copy, truncate, keep writing to the same file
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".2", data, 0o644)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write(40)
	wait.For(t, 20*time.Second, "lines across the copytruncate", func() bool { return len(linesOf(c.records(), path)) == total })
	time.Sleep(200 * time.Millisecond)
	wantExactly(t, c.records(), path, "r", 0, total)
	ids := map[string]bool{}
	for _, r := range c.records() {
		ids[r.fileID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("want 3 file incarnations (original, renamed-to, truncated), got %v", ids)
	}
}

// TestAgentKafkaOutage stops the broker for 30 s while lines are written: reading
// pauses at the in-flight limit, the heap stays flat, and after the restart every line
// arrives exactly once (the producer is idempotent).
func TestAgentKafkaOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	e := newEnv(t)
	path := filepath.Join(e.dir, "x.log")
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "x_log"}]`, path))
	c := consume(t, e.broker.Addr(), "x_log")
	cfg := e.config(t.TempDir())
	cfg.Kafka.MaxInFlightBytes = 64 << 10 // the bound under test; batching is the shipped one
	ag := start(t, cfg)
	appendLines(t, path, "x", 0, 100)
	wait.For(t, 20*time.Second, "lines before the outage", func() bool { return len(linesOf(c.records(), path)) == 100 })

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	e.broker.Stop(t)
	// Write 100 lines every 10 ms for the whole outage, watching the bytes in flight.
	n := 100
	var peak int64
	for end := time.Now().Add(outage); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		appendLines(t, path, "x", n, n+100)
		n += 100
		peak = max(peak, ag.a.prod.InFlightBytes())
	}
	during := heap()
	if peak > cfg.Kafka.MaxInFlightBytes+4096 {
		t.Fatalf("in-flight bytes reached %d with a limit of %d", peak, cfg.Kafka.MaxInFlightBytes)
	}
	// The file grew by megabytes; the agent's heap must not have followed it.
	if during > before+16<<20 {
		t.Fatalf("heap grew from %d to %d bytes during the outage", before, during)
	}
	e.broker.Restart(t)
	wait.For(t, 90*time.Second, "lines after the outage", func() bool { return len(linesOf(c.records(), path)) == n })
	// Let stragglers arrive before counting duplicates.
	wait.For(t, 10*time.Second, "the registry to reach the end", func() bool {
		fi, err := os.Stat(path)
		return err == nil && metricValue(t, ag.a, "logagent_lag_bytes", path) == 0 && fi.Size() > 0
	})
	recs := c.records()
	wantExactly(t, recs, path, "x", 0, n)
	t.Logf("outage of %v: %d lines, peak in flight %d bytes (limit %d), heap %d -> %d bytes", outage, n, peak, cfg.Kafka.MaxInFlightBytes, before, during)
}

// metricValue reads a per-file metric from the agent's registry.
func metricValue(t *testing.T, a *Agent, name, path string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" && l.GetValue() == path {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
