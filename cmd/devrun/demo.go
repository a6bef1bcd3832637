package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DemoEntry is one entry of the collection config devrun seeds.
type DemoEntry struct {
	Path    string `json:"path"`
	Topic   string `json:"topic"`
	Dataset string `json:"dataset"`
}

// Seed stores value at key unless the key exists already, so that a second run (or a
// config the user put meanwhile) is left alone. It reports whether it stored.
func Seed(ctx context.Context, endpoint, key string, value []byte) (bool, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return false, fmt.Errorf("etcd %s: %w", endpoint, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("seed %s: %w", key, err)
	}
	return resp.Succeeded, nil
}

// DemoConfig is the collection config for the demo access log: dataset nginx.access,
// so that its documents carry the parsed fields.
func DemoConfig(path string) []byte {
	b, _ := json.Marshal([]DemoEntry{{Path: path, Topic: "web_log", Dataset: "nginx.access"}})
	return b
}

// Generator appends nginx-style access log lines to a file, a few per second.
type Generator struct {
	Path     string
	Interval time.Duration // mean time between lines; each wait is jittered ±50%
	rng      *rand.Rand
}

// Run appends lines until ctx ends. Every line is written whole with one write to a
// file opened for appending, so a reader never sees half a line but at the end.
func (g *Generator) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(g.Path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(g.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open demo log: %w", err)
	}
	defer f.Close()
	if g.rng == nil {
		g.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-timer.C:
			if _, err := f.WriteString(g.Line(now)); err != nil {
				return fmt.Errorf("append to %s: %w", g.Path, err)
			}
			jitter := time.Duration(g.rng.Int64N(int64(g.Interval))) - g.Interval/2
			timer.Reset(g.Interval + jitter)
		}
	}
}

var (
	demoPaths  = []string{"/", "/index.html", "/api/v1/orders", "/api/v1/orders/4711", "/api/v1/users/me", "/static/app.js", "/static/style.css", "/login", "/search?q=kafka", "/healthz"}
	demoMethod = []string{"GET", "GET", "GET", "GET", "POST", "PUT", "DELETE"}
	demoStatus = []int{200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 404, 500, 502}
	demoAgents = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"curl/8.5.0",
		"Go-http-client/1.1",
		"Prometheus/2.51.0",
	}
)

// Line returns one access log line in nginx's "combined" format, ending in \n.
func (g *Generator) Line(now time.Time) string {
	if g.rng == nil {
		g.rng = rand.New(rand.NewPCG(uint64(now.UnixNano()), 1))
	}
	r := g.rng
	ip := fmt.Sprintf("%d.%d.%d.%d", 10+r.IntN(180), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	method := demoMethod[r.IntN(len(demoMethod))]
	path := demoPaths[r.IntN(len(demoPaths))]
	status := demoStatus[r.IntN(len(demoStatus))]
	size := 0
	if status != 204 && status != 304 {
		size = 200 + r.IntN(40000)
	}
	referer := "-"
	if r.IntN(3) == 0 {
		referer = "https://example.com/"
	}
	return fmt.Sprintf("%s - - [%s] \"%s %s HTTP/1.1\" %d %d \"%s\" \"%s\"\n",
		ip, now.Format("02/Jan/2006:15:04:05 -0700"), method, path, status, size,
		referer, demoAgents[r.IntN(len(demoAgents))])
}
