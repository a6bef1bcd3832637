package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/logpipe/logpipe/internal/proctest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildReal builds the three binaries into dir.
func buildReal(t *testing.T, dir string) {
	t.Helper()
	proctest.Build(t, dir, "broker", "logtransfer", "logagent")
}

// readDocs reads every NDJSON document under dir and returns their messages.
func readDocs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	var msgs []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var doc struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(sc.Bytes(), &doc) == nil && doc.Message != "" {
				msgs = append(msgs, doc.Message)
			}
		}
		fh.Close()
	}
	return msgs
}

// TestRealPipeline is `make run` with the real binaries: lines appended to the demo
// log come out as documents; a second run resumes and ships no line twice.
func TestRealPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	buildReal(t, bin)

	etcdAddr, kafka := freeAddr(t), freeAddr(t)
	mb, mt, ma := freeAddr(t), freeAddr(t), freeAddr(t)
	os.MkdirAll(filepath.Join(root, "conf"), 0o755)
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(root, "conf", name+".ini"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("broker", fmt.Sprintf("[server]\nlisten = %s\nadvertised = %s\n[log]\ndir = ./data/broker\n[metrics]\nlisten = %s\n", kafka, kafka, mb))
	write("logtransfer", fmt.Sprintf("[kafka]\nbrokers = %s\ngroup = devrun-test\ntopics = web_log\n[output]\ntype = file\ndir = ./data/out\n[metrics]\nlisten = %s\n", kafka, mt))
	write("logagent", fmt.Sprintf("[agent]\nhost = devrun-test\ndata_dir = ./data/logagent\n[etcd]\nendpoints = %s\n[kafka]\nbrokers = %s\n[metrics]\nlisten = %s\n", etcdAddr, kafka, ma))

	child := func(name, metrics string) Child {
		return Child{Name: name, Path: filepath.Join(bin, name), Args: []string{"-config", "conf/" + name + ".ini"}, Health: "http://" + metrics + "/healthz"}
	}
	outDir := filepath.Join(root, "data", "out")
	demo := filepath.Join(root, "data", "demo", "access.log")
	run := func(minDocs int) []string {
		out := &syncBuffer{}
		s := Setup{
			Root: root, EtcdAddr: etcdAddr, CollectKey: "/logagent/devrun-test/collect_config",
			DemoLog: demo, OutDir: outDir,
			Children:    []Child{child("broker", mb), child("logtransfer", mt), child("logagent", ma)},
			GenInterval: 20 * time.Millisecond, HealthTimeout: 30 * time.Second, StopTimeout: 15 * time.Second,
			Out: out, AgentConfig: "conf/logagent.ini",
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
			t.Fatalf("Run: %v\n%s", err, out)
		}
		deadline := time.Now().Add(60 * time.Second)
		for len(readDocs(t, outDir)) < minDocs {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d documents after 60s\n%s", minDocs, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v\n%s", err, out)
		}
		if strings.Contains(out.String(), "killed") {
			t.Errorf("a component had to be killed:\n%s", out)
		}
		return readDocs(t, outDir)
	}
	first := run(20)
	second := run(len(first) + 20)

	// Every document is a line of the demo log, and no line was shipped twice.
	lines := map[string]bool{}
	data, _ := os.ReadFile(demo)
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		lines[l] = true
	}
	seen := map[string]bool{}
	for _, m := range second {
		if !lines[m] {
			t.Errorf("document %q is not a line of the demo log", m)
		}
		if seen[m] {
			t.Errorf("line shipped twice: %q", m)
		}
		seen[m] = true
	}
	t.Logf("%d documents after the first run, %d after the second; %d lines written", len(first), len(second), len(lines))
}
