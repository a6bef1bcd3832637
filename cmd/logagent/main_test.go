package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/logagent"
)

func TestConfigCommands(t *testing.T) {
	etcd, err := embedetcd.Start(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	cfg := logagent.DefaultConfig()
	cfg.Agent.Host = "web-9"
	cfg.Etcd.Endpoints = etcd.Endpoint()
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`[{"path": "/var/log/nginx/access.log", "topic": "web_log"}]`), 0o644)
	os.WriteFile(bad, []byte(`[{"path": "/var/log/x.log", "topic": "no spaces"}]`), 0o644)

	var out bytes.Buffer
	if err := command(ctx, cfg, []string{"config", "show"}, &out); err == nil || !strings.Contains(err.Error(), "/logagent/web-9/collect_config is not set") {
		t.Fatalf("show before put: %v", err)
	}
	if err := command(ctx, cfg, []string{"config", "validate", bad}, &out); err == nil || !strings.Contains(err.Error(), `entry 0: "topic"`) {
		t.Fatalf("validate bad: %v", err)
	}
	if err := command(ctx, cfg, []string{"config", "put", bad}, &out); err == nil {
		t.Fatal("put stored an invalid config")
	}
	if err := command(ctx, cfg, []string{"config", "validate", good}, &out); err != nil {
		t.Fatal(err)
	}
	if err := command(ctx, cfg, []string{"config", "put", good}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := command(ctx, cfg, []string{"config", "show"}, &out); err != nil || !strings.Contains(out.String(), `"topic":"web_log"`) {
		t.Fatalf("show: %v\n%s", err, out.String())
	}
	if err := command(ctx, cfg, []string{"nonsense"}, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestStatusCommand(t *testing.T) {
	srv := httptest.NewServer(mux(`[{"path":"/var/log/a.log","topic":"web_log","file_id":"1-2-0","offset":10,"size":25,"lag":15,"outstanding":0}]`))
	defer srv.Close()
	cfg := logagent.DefaultConfig()
	cfg.Metrics.Listen = strings.TrimPrefix(srv.URL, "http://")
	var out bytes.Buffer
	if err := status(cfg, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "/var/log/a.log") || !strings.Contains(out.String(), "15") {
		t.Fatalf("status output:\n%s", out.String())
	}
	cfg.Metrics.Listen = "127.0.0.1:1"
	if err := status(cfg, &out); err == nil || !strings.Contains(err.Error(), "is the agent running") {
		t.Fatalf("status with no agent: %v", err)
	}
}

func mux(body string) *httpHandler { return &httpHandler{body: body} }

type httpHandler struct{ body string }

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/status" {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(h.body))
}
