package logagent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/logging"
	"github.com/logpipe/logpipe/internal/wait"
)

// defaults is the shipped configuration, pointed at the test's etcd and broker.
func (e *env) defaults(dataDir string) Config {
	c := DefaultConfig()
	c.Agent.Host = "web-1"
	c.Agent.DataDir = dataDir
	c.Etcd.Endpoints = e.etcd.Endpoint()
	c.Kafka.Brokers = e.broker.Addr()
	c.Metrics.Listen = ""
	if err := c.Validate(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// quickly runs f and fails the test if it takes longer than d.
func quickly(t *testing.T, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not answer within %v", what, d)
	}
	return time.Since(start)
}

// statusOf serves /status through the agent's handler.
func statusOf(t *testing.T, a *Agent) []FileStatus {
	t.Helper()
	w := httptest.NewRecorder()
	a.StatusHandler().ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var files []FileStatus
	if err := json.Unmarshal(w.Body.Bytes(), &files); err != nil {
		t.Fatalf("/status: %v: %s", err, w.Body)
	}
	return files
}

func refusedCount(t *testing.T, a *Agent, reason string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "logagent_files_refused_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// A watched directory holding a symlink to a secret and a FIFO, with the shipped
// settings: the secret is never shipped, the FIFO blocks nothing, and the agent keeps
// shipping the other files, applying config changes, answering /status and stopping
// quickly.
func TestAgentRefusesSymlinksAndFIFOs(t *testing.T) {
	e := newEnv(t)
	logs := filepath.Join(e.dir, "logs")
	app := filepath.Join(logs, "app")
	must(t, os.MkdirAll(app, 0o755))
	secret := filepath.Join(e.dir, "shadow")
	must(t, os.WriteFile(secret, []byte("root:SECRET:19000::::::\n"), 0o600))
	good := filepath.Join(app, "good.log")
	appendLines(t, good, "good", 0, 50)
	must(t, os.Symlink(secret, filepath.Join(app, "evil.log")))
	must(t, syscall.Mkfifo(filepath.Join(app, "fifo.log"), 0o644))
	literalFIFO := filepath.Join(logs, "pipe.log")
	must(t, syscall.Mkfifo(literalFIFO, 0o644))
	// An entry that allows symlinks ships through one.
	real := filepath.Join(e.dir, "real.log")
	appendLines(t, real, "linked", 0, 10)
	linked := filepath.Join(logs, "linked.log")
	must(t, os.Symlink(real, linked))

	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "web_log"},
		{"path": %q, "topic": "app_log", "follow_symlinks": true}]`, filepath.Join(app, "*.log"), literalFIFO, linked))
	c := consume(t, e.broker.Addr(), "web_log", "app_log")
	ag := start(t, e.defaults(t.TempDir()))

	wait.For(t, 20*time.Second, "the good and the linked lines", func() bool {
		return len(linesOf(c.records(), good)) == 50 && len(linesOf(c.records(), linked)) == 10
	})
	wait.For(t, 5*time.Second, "the refusals counted", func() bool {
		return refusedCount(t, ag.a, "symlink") == 1 && refusedCount(t, ag.a, "not_regular") == 2
	})

	// /status answers at once and lists only the files read.
	var files []FileStatus
	took := quickly(t, time.Second, "/status", func() { files = statusOf(t, ag.a) })
	if len(files) != 2 || files[0].Path != good || files[1].Path != linked {
		t.Fatalf("/status lists %+v", files)
	}
	t.Logf("/status with a FIFO and a symlink at watched paths: %v", took)

	// The good file rotated, and a symlink to the secret put in its place: the rest
	// of the old file is read, the symlink refused.
	appendLines(t, good, "good", 50, 60)
	wait.For(t, 10*time.Second, "lines 50-60", func() bool { return len(linesOf(c.records(), good)) == 60 })
	must(t, os.Rename(good, good+".1"))
	must(t, os.Symlink(secret, good))
	wait.For(t, 10*time.Second, "the symlink at the rotated path refused", func() bool { return refusedCount(t, ag.a, "symlink") == 2 })

	// A config change applies while the FIFOs and symlinks stay.
	other := filepath.Join(logs, "other.log")
	appendLines(t, other, "other", 0, 20)
	applied := time.Now()
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "web_log"}, {"path": %q, "topic": "web_log"}]`,
		filepath.Join(app, "*.log"), literalFIFO, other))
	wait.For(t, 10*time.Second, "the added file's lines", func() bool { return len(linesOf(c.records(), other)) == 20 })
	t.Logf("config change shipped in %v", time.Since(applied).Round(time.Millisecond))

	for _, r := range c.records() {
		if strings.Contains(r.value, "SECRET") {
			t.Fatalf("the secret was shipped: %+v", r)
		}
	}
	wantExactly(t, c.records(), good, "good", 0, 60)
	took = quickly(t, 5*time.Second, "shutdown", func() { ag.stop(t) })
	t.Logf("shutdown: %v", took)
}

// A file open that hangs (a file system that does not answer) holds no lock: /status,
// config changes and shutdown answer while it hangs, and the other files keep
// shipping.
func TestAgentSlowOpenHoldsNoLock(t *testing.T) {
	e := newEnv(t)
	slow := filepath.Join(e.dir, "slow.log")
	good := filepath.Join(e.dir, "good.log")
	appendLines(t, slow, "slow", 0, 10)
	appendLines(t, good, "good", 0, 10)
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "web_log"}]`, slow, good))
	c := consume(t, e.broker.Addr(), "web_log")

	cfg := e.defaults(t.TempDir())
	cfg.Agent.ShutdownTimeout = 2 * time.Second // how long shutdown waits for the hung harvester
	a, err := New(cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.open = func(path string) (*os.File, error) {
		if path == slow {
			once.Do(func() { close(entered) })
			<-release
		}
		return os.Open(path)
	}
	defer close(release)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	wait.For(t, 20*time.Second, "the good file's lines", func() bool { return len(linesOf(c.records(), good)) == 10 })
	<-entered
	took := quickly(t, time.Second, "/status during a hung open", func() { statusOf(t, a) })
	t.Logf("/status during a hung open: %v", took)

	// Removing the hung entry and adding another applies at once.
	other := filepath.Join(e.dir, "other.log")
	appendLines(t, other, "other", 0, 10)
	changed := time.Now()
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "web_log"}]`, good, other))
	wait.For(t, 10*time.Second, "the added file's lines", func() bool { return len(linesOf(c.records(), other)) == 10 })
	t.Logf("config change during a hung open shipped in %v", time.Since(changed).Round(time.Millisecond))
	quickly(t, time.Second, "/status after the change", func() { statusOf(t, a) })
	appendLines(t, good, "good", 10, 20)
	wait.For(t, 10*time.Second, "more lines of the good file", func() bool { return len(linesOf(c.records(), good)) == 20 })
	t.Logf("goroutines: %d before the agent, %d while an open hangs", before, runtime.NumGoroutine())

	cancel()
	took = quickly(t, cfg.Agent.ShutdownTimeout+3*time.Second, "shutdown during a hung open", func() {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Logf("shutdown during a hung open: %v (waits at most shutdown_timeout %v for it)", took, cfg.Agent.ShutdownTimeout)
	if len(linesOf(c.records(), slow)) != 0 {
		t.Fatal("lines of the hung file were shipped")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
