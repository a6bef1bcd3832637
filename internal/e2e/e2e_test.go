// Package e2e tests the whole pipeline with the real binaries as processes: a real
// etcd server, the broker, two transfers and an agent, with the Elasticsearch
// stand-in, through crashes, rotations and outages.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/estest"
	"github.com/logpipe/logpipe/internal/proctest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// proc is one component running as a process, restartable.
type proc struct {
	tb   testing.TB
	name string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *os.File
}

func (p *proc) start() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.tb.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		p.cmd = nil
	}
}

// writer appends unique lines to a file and remembers, for each, the byte offset
// it was written at in its file incarnation.
type writer struct {
	path string
	mu   sync.Mutex
	size int64
	want map[string]int64 // line text -> offset
	n    int
}

func (w *writer) write(t *testing.T, k int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var b strings.Builder
	for i := 0; i < k; i++ {
		line := fmt.Sprintf("%s line %07d payload=%x", filepath.Base(w.path), w.n, rand.Uint64())
		w.want[line] = w.size + int64(b.Len())
		b.WriteString(line + "\n")
		w.n++
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Error(err)
	}
	w.size += int64(b.Len())
}

// rename rotates by rename + create: the next write creates a new file.
func (w *writer) rename(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		t.Fatal(err)
	}
	w.size = 0
}

// copytruncate rotates as logrotate's copytruncate does.
func (w *writer) copytruncate(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, _ := os.ReadFile(w.path)
	os.WriteFile(w.path+".1", data, 0o644)
	if err := os.Truncate(w.path, 0); err != nil {
		t.Fatal(err)
	}
	w.size = 0
}

func TestPipelineExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	runPipeline(t, nil)
}

// TestPipelineSecured is the same run with everything secured: SASL_SSL with
// SCRAM-SHA-512 between the components and the broker, ACLs on (the agent may
// only write its topics, the transfers only read them in their group), and etcd
// reached over TLS with a client certificate.
func TestPipelineSecured(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	runPipeline(t, newSecurity(t))
}

// runPipeline runs the whole pipeline through kills, rotations, a config change
// and an Elasticsearch outage, and checks that every line is exactly one
// document. sec, if not nil, secures it.
func runPipeline(t *testing.T, sec *security) {
	root := t.TempDir()
	bin := proctest.Build(t, filepath.Join(root, "bin"), "broker", "logagent", "logtransfer")
	logs := filepath.Join(root, "logs")
	os.MkdirAll(logs, 0o755)

	var etcdTLS embedetcd.TLS
	if sec != nil {
		etcdTLS = sec.etcdServer
	}
	etcd, err := embedetcd.StartWith(filepath.Join(root, "etcd"), "127.0.0.1:0", etcdTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	cc := clientv3.Config{Endpoints: []string{etcd.Endpoint()}, DialTimeout: 5 * time.Second}
	if sec != nil {
		cc.TLS = sec.etcdClient
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	es, err := estest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()

	brokerAddr := proctest.FreeAddr(t)
	conf := func(name, text string) string {
		p := filepath.Join(root, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	out, _ := os.Create(filepath.Join(root, "components.log"))
	defer out.Close()
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(out.Name())
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("last component logs:\n%s", data)
		}
	})
	brokerIni := conf("broker.ini", fmt.Sprintf(`[server]
listen = %s
advertised = %s
%s
[log]
dir = %s
num_partitions = 3
[metrics]
listen =
[logging]
level = warn
[group]
initial_rebalance_delay = 0s
`, brokerAddr, brokerAddr, sec.brokerIni(brokerAddr), filepath.Join(root, "broker")))
	sec.addUsers(t, filepath.Join(bin, "broker"), brokerIni)
	broker := &proc{tb: t, name: "broker", log: out, args: []string{filepath.Join(bin, "broker"), "-config", brokerIni}}
	agent := &proc{tb: t, name: "logagent", log: out, args: []string{filepath.Join(bin, "logagent"), "-config", conf("logagent.ini", fmt.Sprintf(`[agent]
host = e2e-host
data_dir = %s
[etcd]
endpoints = %s
%s
[kafka]
brokers = %s
%s
[metrics]
listen =
[logging]
level = warn
`, filepath.Join(root, "agent"), etcd.Endpoint(), sec.etcdIni(), brokerAddr, sec.kafkaIni("agent")))}}
	transferConf := conf("logtransfer.ini", fmt.Sprintf(`[kafka]
brokers = %s
%s
topics = /.*_log$/
session_timeout = 6s
[output]
bulk_actions = 500
flush_interval = 50ms
backoff_max = 1s
[es]
urls = %s
[metrics]
listen =
[logging]
level = warn
`, brokerAddr, sec.kafkaIni("transfer"), es.URL()))
	transfers := []*proc{
		{tb: t, name: "logtransfer-1", log: out, args: []string{filepath.Join(bin, "logtransfer"), "-config", transferConf}},
		{tb: t, name: "logtransfer-2", log: out, args: []string{filepath.Join(bin, "logtransfer"), "-config", transferConf}},
	}
	all := append([]*proc{broker, agent}, transfers...)
	defer func() {
		for _, p := range all {
			p.stop()
		}
	}()

	ws := map[string]*writer{}
	for _, name := range []string{"access.log", "app.log", "late.log"} {
		ws[name] = &writer{path: filepath.Join(logs, name), want: map[string]int64{}}
	}
	put := func(v string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, "/logagent/e2e-host/collect_config", v); err != nil {
			t.Fatal(err)
		}
	}
	put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "app_log"}]`, ws["access.log"].path, ws["app.log"].path))

	broker.start()
	sec.grant(t, brokerAddr)
	for _, p := range transfers {
		p.start()
	}
	agent.start()

	// Three files at different rates.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	rate := func(w *writer, every time.Duration, k int) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(every):
				w.write(t, k)
			}
		}
	}
	wg.Add(2)
	go rate(ws["access.log"], 5*time.Millisecond, 10)
	go rate(ws["app.log"], 20*time.Millisecond, 3)

	step := func(what string, f func()) {
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), what)
		f()
		time.Sleep(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
	}
	start = time.Now()
	time.Sleep(time.Second)
	step("rename rotation of access.log", func() { ws["access.log"].rename(t) })
	step("SIGKILL agent", func() { agent.kill(); time.Sleep(300 * time.Millisecond); agent.start() })
	step("SIGKILL broker", func() { broker.kill(); time.Sleep(300 * time.Millisecond); broker.start() })
	step("SIGKILL logtransfer-1", func() { transfers[0].kill(); time.Sleep(300 * time.Millisecond); transfers[0].start() })
	step("add late.log to the collection config, to a new topic", func() {
		// The transfer's topics are the shipped pattern /.*_log$/: the new topic is
		// consumed within its metadata refresh (10 s), with no change to the transfer.
		ws["late.log"].write(t, 5)
		put(fmt.Sprintf(`[{"path": %q, "topic": "web_log"}, {"path": %q, "topic": "app_log"}, {"path": %q, "topic": "late_log"}]`,
			ws["access.log"].path, ws["app.log"].path, ws["late.log"].path))
		wg.Add(1)
		go rate(ws["late.log"], 50*time.Millisecond, 1)
	})
	step("Elasticsearch outage of 3s", func() { es.Down(); time.Sleep(3 * time.Second); es.Up() })
	step("SIGKILL agent", func() { agent.kill(); time.Sleep(300 * time.Millisecond); agent.start() })
	step("copytruncate rotation of app.log (after the agent caught up)", func() {
		// Lines written between the agent's last read and the truncation exist only
		// in the copy; like every shipper, the agent cannot see them. The test waits for
		// the agent to catch up, as a rotation at a quiet moment would.
		ws["app.log"].mu.Lock()
		waitDocs(t, es, ws["app.log"], 60*time.Second)
		ws["app.log"].mu.Unlock()
		ws["app.log"].copytruncate(t)
	})
	step("SIGKILL broker", func() { broker.kill(); time.Sleep(300 * time.Millisecond); broker.start() })
	step("SIGKILL logtransfer-2", func() { transfers[1].kill(); time.Sleep(300 * time.Millisecond); transfers[1].start() })
	step("SIGKILL agent", func() { agent.kill(); time.Sleep(300 * time.Millisecond); agent.start() })
	close(stop)
	wg.Wait()
	t.Logf("%6.1fs writers stopped", time.Since(start).Seconds())

	// A last line in each file is its fence: a file's lines go to one partition, in
	// order, so once every file's last line is indexed, whatever came before it is
	// too, re-deliveries included; a duplicate could not arrive later.
	for _, w := range ws {
		w.write(t, 1)
	}
	total := 0
	for _, w := range ws {
		total += len(w.want)
	}
	for _, w := range ws {
		waitDocs(t, es, w, 90*time.Second)
	}
	verify(t, es, ws, total)
	t.Logf("%6.1fs %d lines, %d documents, %d re-indexed under the same _id", time.Since(start).Seconds(), total, es.Count("*"), es.Overwrites.Load())
}

var start time.Time

type doc struct {
	Message string `json:"message"`
	Log     struct {
		File struct {
			Path string `json:"path"`
		} `json:"file"`
		Offset int64 `json:"offset"`
	} `json:"log"`
}

// waitDocs waits until every line written to w so far is indexed.
func waitDocs(t *testing.T, es *estest.Server, w *writer, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		have := map[string]bool{}
		for _, d := range es.Docs("*") {
			var x doc
			json.Unmarshal(d.Source, &x)
			have[x.Message] = true
		}
		missing := 0
		for line := range w.want {
			if !have[line] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: lines not indexed after %v", w.path, d)
}

// verify checks that every line written is exactly one document, with its text,
// path and offset, and that no other document exists; on failure it lists what is
// missing or duplicated.
func verify(t *testing.T, es *estest.Server, ws map[string]*writer, total int) {
	t.Helper()
	count := map[string]int{}
	var problems []string
	for _, d := range es.Docs("*") {
		var x doc
		if err := json.Unmarshal(d.Source, &x); err != nil {
			problems = append(problems, fmt.Sprintf("document %s is not JSON", d.ID))
			continue
		}
		count[x.Message]++
		w := ws[filepath.Base(x.Log.File.Path)]
		off, ok := int64(0), false
		if w != nil {
			off, ok = w.want[x.Message]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected document %s: %q from %s", d.ID, x.Message, x.Log.File.Path))
		} else if off != x.Log.Offset {
			problems = append(problems, fmt.Sprintf("%q: offset %d, written at %d", x.Message, x.Log.Offset, off))
		}
	}
	for _, w := range ws {
		for line := range w.want {
			switch n := count[line]; {
			case n == 0:
				problems = append(problems, "missing: "+line)
			case n > 1:
				problems = append(problems, fmt.Sprintf("duplicated %d times: %s", n, line))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 40 {
			problems = append(problems[:40], fmt.Sprintf("... and %d more", len(problems)-40))
		}
		t.Fatalf("%d lines written, %d documents:\n%s", total, es.Count("*"), strings.Join(problems, "\n"))
	}
}
