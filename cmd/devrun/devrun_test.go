package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logpipe/logpipe/internal/wait"
)

// The test binary doubles as the fake child: with DEVRUN_FAKE set it serves /healthz,
// logs a line, and on SIGTERM records its name in DEVRUN_FAKE_ORDER and exits (or,
// with DEVRUN_FAKE_STUBBORN=1, ignores SIGTERM).
func TestMain(m *testing.M) {
	if name := os.Getenv("DEVRUN_FAKE"); name != "" {
		fakeChild(name)
		return
	}
	os.Exit(m.Run())
}

func fakeChild(name string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	if os.Getenv("DEVRUN_FAKE_EXIT") == "1" {
		fmt.Fprintln(os.Stderr, "fatal: cannot start")
		os.Exit(3)
	}
	if addr := os.Getenv("DEVRUN_FAKE_HEALTH"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	}
	fmt.Printf("hello from %s\npartial line without end", name)
	for range sig {
		if os.Getenv("DEVRUN_FAKE_STUBBORN") == "1" {
			continue
		}
		f, err := os.OpenFile(os.Getenv("DEVRUN_FAKE_ORDER"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			fmt.Fprintln(f, name)
			f.Close()
		}
		os.Exit(0)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func fake(t *testing.T, name, order string, env ...string) Child {
	addr := freeAddr(t)
	return Child{
		Name:   name,
		Path:   os.Args[0],
		Args:   []string{"-test.run=^$", "-config", "conf/dev/" + name + ".ini"},
		Env:    append([]string{"DEVRUN_FAKE=" + name, "DEVRUN_FAKE_HEALTH=" + addr, "DEVRUN_FAKE_ORDER=" + order}, env...),
		Health: "http://" + addr + "/healthz",
	}
}

// syncBuffer is a bytes.Buffer safe for the children's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func countLines(t *testing.T, path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte{'\n'})
}

// runOnce runs the orchestration with fake children in root until f returns, then
// cancels it as Ctrl-C would, and returns its output.
func runOnce(t *testing.T, root, etcdAddr string, f func(s Setup)) string {
	t.Helper()
	order := filepath.Join(root, "order")
	os.Remove(order)
	out := &syncBuffer{}
	s := Setup{
		Root:          root,
		EtcdAddr:      etcdAddr,
		CollectKey:    "/logagent/testhost/collect_config",
		DemoLog:       filepath.Join(root, "data", "demo", "access.log"),
		OutDir:        filepath.Join(root, "data", "out"),
		Children:      []Child{fake(t, "broker", order), fake(t, "logtransfer", order), fake(t, "logagent", order)},
		GenInterval:   20 * time.Millisecond,
		HealthTimeout: 20 * time.Second,
		StopTimeout:   5 * time.Second,
		Out:           out,
		AgentConfig:   "conf/dev/logagent.ini",
	}
	ready := make(chan struct{})
	s.Ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run ended before ready: %v\n%s", err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready after 60s\n%s", out)
	}
	f(s)
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not stop within 30s\n%s", out)
	}
	t.Logf("stopped in %v", time.Since(start))
	got, _ := os.ReadFile(order)
	if want := "logagent\nlogtransfer\nbroker\n"; string(got) != want {
		t.Errorf("stop order %q, want %q", got, want)
	}
	return out.String()
}

func TestRunStartsSeedsGeneratesAndResumes(t *testing.T) {
	root := t.TempDir()
	etcdAddr := freeAddr(t)
	var firstLog []byte
	out := runOnce(t, root, etcdAddr, func(s Setup) {
		wait.For(t, 20*time.Second, "generated lines", func() bool { return countLines(t, s.DemoLog) >= 5 })
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdAddr}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, s.CollectKey)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get seeded key: %v %v", err, resp)
		}
		if got, want := string(resp.Kvs[0].Value), string(DemoConfig(s.DemoLog)); got != want {
			t.Errorf("seeded %s, want %s", got, want)
		}
		// The user changes the config while it runs: the next run must keep it.
		if _, err := cli.Put(ctx, s.CollectKey, `[{"path":"/tmp/x.log","topic":"app_log"}]`); err != nil {
			t.Fatal(err)
		}
	})
	for _, want := range []string{
		"broker      | hello from broker\n",
		"logagent    | hello from logagent\n",
		"logtransfer | partial line without end\n",
		"seeded /logagent/testhost/collect_config",
		"etcdctl --endpoints=" + etcdAddr + " put /logagent/testhost/collect_config",
		"bin/logagent -config conf/dev/logagent.ini config put FILE",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "logpipe is running"); n != 1 {
		t.Errorf("summary printed %d times", n)
	}
	demo := filepath.Join(root, "data", "demo", "access.log")
	firstLog, _ = os.ReadFile(demo)
	for i, line := range strings.Split(strings.TrimSuffix(string(firstLog), "\n"), "\n") {
		if !strings.Contains(line, `HTTP/1.1" `) || strings.Count(line, `"`) != 6 {
			t.Fatalf("line %d is not a combined log line: %q", i, line)
		}
	}

	// Second run: same data; the key is left alone and the log is appended to.
	out = runOnce(t, root, etcdAddr, func(s Setup) {
		wait.For(t, 20*time.Second, "more lines", func() bool { return countLines(t, s.DemoLog) > bytes.Count(firstLog, []byte{'\n'})+3 })
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdAddr}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, s.CollectKey)
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `[{"path":"/tmp/x.log","topic":"app_log"}]` {
			t.Fatalf("second run changed the key: %v %v", err, resp)
		}
	})
	if !strings.Contains(out, "exists; left as it is") {
		t.Errorf("second run output lacks the left-alone message:\n%s", out)
	}
	second, _ := os.ReadFile(demo)
	if !bytes.HasPrefix(second, firstLog) {
		t.Errorf("second run did not append to the demo log")
	}
}

func TestStopKillsStubbornChild(t *testing.T) {
	order := filepath.Join(t.TempDir(), "order")
	ps := NewProcs(&syncBuffer{}, 20*time.Second, 300*time.Millisecond)
	if _, err := ps.Start(context.Background(), fake(t, "stubborn", order, "DEVRUN_FAKE_STUBBORN=1")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := ps.Stop()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop = %v, want a killed error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

func TestStartReportsChildThatExits(t *testing.T) {
	out := &syncBuffer{}
	ps := NewProcs(out, 20*time.Second, time.Second)
	_, err := ps.Start(context.Background(), fake(t, "broken", filepath.Join(t.TempDir(), "order"), "DEVRUN_FAKE_EXIT=1"))
	if err == nil || !strings.Contains(err.Error(), "broken exited while starting") {
		t.Fatalf("Start = %v", err)
	}
	if !strings.Contains(out.String(), "broken      | fatal: cannot start\n") {
		t.Errorf("child's output not shown: %q", out.String())
	}
	ps.Stop()
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	pw := &prefixWriter{w: &b, prefix: []byte("x| ")}
	pw.Write([]byte("a\nb"))
	pw.Write([]byte("c\n\nd"))
	pw.Flush()
	if got, want := b.String(), "x| a\nx| bc\nx| \nx| d\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestGeneratorLine(t *testing.T) {
	g := &Generator{}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for range 100 {
		l := g.Line(now)
		if !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 || !strings.Contains(l, "[22/Nov/2026:12:00:00 +0000]") {
			t.Fatalf("bad line %q", l)
		}
	}
}
