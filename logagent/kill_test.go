package logagent

import (
	"fmt"
	"github.com/logpipe/logpipe/internal/proctest"
	"github.com/logpipe/logpipe/internal/wait"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAgentSIGKILL runs the agent binary and kills it with SIGKILL five times while
// lines are written: every line must reach the topic (duplicates are allowed; the
// transfer removes them by document id), matched by (path, offset).
func TestAgentSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e := newEnv(t)
	bin := filepath.Join(proctest.Build(t, t.TempDir(), "logagent"), "logagent")
	path := filepath.Join(e.dir, "busy.log")
	e.put(fmt.Sprintf(`[{"path": %q, "topic": "busy_log"}]`, path))
	ini := filepath.Join(t.TempDir(), "logagent.ini")
	os.WriteFile(ini, []byte(fmt.Sprintf(`[agent]
host = web-1
data_dir = %s
[etcd]
endpoints = %s
[kafka]
brokers = %s
[metrics]
listen =
[logging]
level = warn
`, t.TempDir(), e.etcd.Endpoint(), e.broker.Addr())), 0o644)

	var written atomic.Int64
	began := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 50 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			appendLines(t, path, "k", i, i+50)
			written.Store(int64(i + 50))
		}
	}()
	c := consume(t, e.broker.Addr(), "busy_log")
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "-config", ini)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for kill := 0; kill < 5; kill++ {
		cmd := run()
		before := len(c.records())
		wait.For(t, 20*time.Second, "progress before the kill", func() bool { return len(c.records()) > before+2000 })
		cmd.Process.Kill()
		cmd.Wait()
	}
	close(stop)
	wg.Wait()
	rate := float64(written.Load()) / time.Since(began).Seconds()
	cmd := run()
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	n := int(written.Load())
	wait.For(t, 60*time.Second, "every line after five kills", func() bool { return len(linesOf(c.records(), path)) == n })
	got := linesOf(c.records(), path)
	dups := 0
	for i := 0; i < n; i++ {
		k := got[fmt.Sprintf("k line %06d", i)]
		if k == 0 {
			t.Fatalf("line %d lost", i)
		}
		dups += k - 1
	}
	perKill := time.Duration(float64(dups) / 5 / rate * float64(time.Second))
	t.Logf("%d lines at %.0f lines/s, 5 SIGKILLs: none lost, %d re-sent (same file and offset, deduplicated downstream by _id): %.0f lines or %v of traffic per kill",
		n, rate, dups, float64(dups)/5, perKill.Round(time.Millisecond))
	// With the default registry_flush the registry trails Kafka's acknowledgements by
	// well under a second.
	if perKill > 500*time.Millisecond {
		t.Fatalf("a kill re-sends %v of traffic", perKill)
	}
}
