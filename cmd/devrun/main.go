// Command devrun runs the whole logpipe pipeline on one machine for development:
// `make run` builds the binaries and starts it from the repository root.
//
// It starts an embedded etcd, then bin/broker, bin/logtransfer (file output) and
// bin/logagent with conf/dev/*.ini, waiting for each to report healthy; seeds the
// agent's collection config with a demo access log unless the key exists; and appends
// nginx-style lines to that log, a few per second. Everything lives under data/, so a
// second run resumes where the first stopped. SIGINT or SIGTERM stops the agent, the
// transfer, the broker and etcd, in that order.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/logpipe/logpipe/internal/embedetcd"
	"gopkg.in/ini.v1"
)

// Setup is what Run starts.
type Setup struct {
	Root          string        // data/ lives here; child paths are relative to it
	EtcdAddr      string        // client address of the embedded etcd
	CollectKey    string        // the agent's etcd key, seeded with the demo config
	DemoLog       string        // the file the generator appends to
	OutDir        string        // where the transfer writes NDJSON (for the summary)
	Children      []Child       // started in this order, stopped in reverse
	GenInterval   time.Duration // mean time between generated lines
	HealthTimeout time.Duration
	StopTimeout   time.Duration
	Out           io.Writer // devrun's messages and the children's prefixed output
	AgentConfig   string    // conf path shown in the "add a path" hint
	Ready         func()    // called once everything runs (tests); may be nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root, err := os.Getwd()
	if err == nil {
		var s Setup
		s, err = devSetup(root)
		if err == nil {
			err = Run(ctx, s)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

// devSetup reads conf/dev/*.ini under root for the addresses and paths devrun needs.
func devSetup(root string) (Setup, error) {
	for _, b := range []string{"broker", "logtransfer", "logagent"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			return Setup{}, fmt.Errorf("bin/%s is missing: run `make run` (it builds first) from the repository root", b)
		}
	}
	load := func(name string) (*ini.File, error) {
		f, err := ini.Load(filepath.Join(root, "conf", "dev", name+".ini"))
		if err != nil {
			return nil, fmt.Errorf("conf/dev/%s.ini: %w", name, err)
		}
		return f, nil
	}
	bc, err := load("broker")
	if err != nil {
		return Setup{}, err
	}
	tc, err := load("logtransfer")
	if err != nil {
		return Setup{}, err
	}
	ac, err := load("logagent")
	if err != nil {
		return Setup{}, err
	}
	host := ac.Section("agent").Key("host").String()
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return Setup{}, fmt.Errorf("hostname: %w", err)
		}
	}
	key := ac.Section("etcd").Key("collect_key").MustString("/logagent/{host}/collect_config")
	etcdAddr := ac.Section("etcd").Key("endpoints").Strings(",")[0]
	outDir := tc.Section("output").Key("dir").MustString("./data/out")
	health := func(f *ini.File) string {
		if a := f.Section("metrics").Key("listen").String(); a != "" {
			return "http://" + a + "/healthz"
		}
		return ""
	}
	child := func(name string, f *ini.File) Child {
		return Child{
			Name:   name,
			Path:   filepath.Join(root, "bin", name),
			Args:   []string{"-config", filepath.Join("conf", "dev", name+".ini")},
			Health: health(f),
		}
	}
	return Setup{
		Root:          root,
		EtcdAddr:      etcdAddr,
		CollectKey:    strings.ReplaceAll(key, "{host}", host),
		DemoLog:       filepath.Join(root, "data", "demo", "access.log"),
		OutDir:        filepath.Join(root, outDir),
		Children:      []Child{child("broker", bc), child("logtransfer", tc), child("logagent", ac)},
		GenInterval:   300 * time.Millisecond,
		HealthTimeout: 30 * time.Second,
		StopTimeout:   8 * time.Second,
		Out:           os.Stdout,
		AgentConfig:   filepath.Join("conf", "dev", "logagent.ini"),
	}, nil
}

// Run starts everything Setup names, runs until ctx ends or a child exits, then
// stops it all. Children must run with Root as their working directory.
func Run(ctx context.Context, s Setup) (err error) {
	say := func(format string, args ...any) { fmt.Fprintf(s.Out, "devrun      | "+format+"\n", args...) }
	dataDir := filepath.Join(s.Root, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	etcdDir := filepath.Join(dataDir, "etcd")
	say("starting etcd on %s (data %s)", s.EtcdAddr, etcdDir)
	etcd, err := embedetcd.Start(etcdDir, s.EtcdAddr)
	if err != nil {
		return fmt.Errorf("%w (is another `make run` running?)", err)
	}
	defer func() {
		etcd.Close()
		say("etcd stopped")
	}()

	seeded, err := Seed(ctx, etcd.Endpoint(), s.CollectKey, DemoConfig(s.DemoLog))
	if err != nil {
		return err
	}
	if seeded {
		say("seeded %s with the demo config", s.CollectKey)
	} else {
		say("%s exists; left as it is", s.CollectKey)
	}

	procs := NewProcs(s.Out, s.HealthTimeout, s.StopTimeout)
	defer func() {
		say("stopping")
		if serr := procs.Stop(); serr != nil {
			say("stop: %v", serr)
		}
	}()
	pids := make([]int, len(s.Children))
	for i, c := range s.Children {
		say("starting %s", c.Name)
		if c.Dir == "" {
			c.Dir = s.Root
		}
		pid, err := procs.Start(ctx, c)
		if err != nil {
			return err
		}
		pids[i] = pid
	}

	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan error, 1)
	gen := &Generator{Path: s.DemoLog, Interval: s.GenInterval}
	go func() { genDone <- gen.Run(genCtx) }()
	defer func() {
		stopGen()
		if gerr := <-genDone; gerr != nil {
			say("generator: %v", gerr)
		}
	}()

	printSummary(s, etcd.Endpoint(), pids)
	if s.Ready != nil {
		s.Ready()
	}
	select {
	case <-ctx.Done():
		say("signal received")
		return nil
	case name := <-procs.Exited():
		return fmt.Errorf("%s exited on its own; see its log lines above", name)
	case gerr := <-genDone:
		genDone <- gerr // for the deferred wait
		return fmt.Errorf("generator: %w", gerr)
	}
}

// printSummary tells, once, what runs where and how to add a path.
func printSummary(s Setup, etcdEndpoint string, pids []int) {
	w := s.Out
	rel := func(p string) string {
		if r, err := filepath.Rel(s.Root, p); err == nil {
			return r
		}
		return p
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "==================== logpipe is running (Ctrl-C stops it) ====================")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  etcd\tpid %d (in devrun)\thttp://%s\tdata/etcd\n", os.Getpid(), etcdEndpoint)
	for i, c := range s.Children {
		conf := "-"
		if len(c.Args) > 0 {
			conf = c.Args[len(c.Args)-1]
		}
		fmt.Fprintf(tw, "  %s\tpid %d\t%s\t%s\n", c.Name, pids[i], c.Health, conf)
	}
	tw.Flush()
	fmt.Fprintf(w, "  data:        %s/ (etcd, broker, logagent registry, demo, out); make clean removes it\n", rel(filepath.Join(s.Root, "data")))
	fmt.Fprintf(w, "  demo log:    %s (a line every ~%v)\n", rel(s.DemoLog), s.GenInterval)
	fmt.Fprintf(w, "  output:      %s/*.ndjson    e.g. tail -f %s/web_log-*.ndjson\n", rel(s.OutDir), rel(s.OutDir))
	fmt.Fprintf(w, "  logs:        this terminal, each line prefixed with its component\n")
	fmt.Fprintf(w, "  etcd key:    %s\n", s.CollectKey)
	fmt.Fprintln(w, "  Add a path while it runs (the agent picks it up within a second):")
	fmt.Fprintf(w, "    etcdctl --endpoints=%s put %s \\\n      '[{\"path\":\"%s\",\"topic\":\"web_log\"},{\"path\":\"/tmp/app/*.log\",\"topic\":\"app_log\"}]'\n",
		etcdEndpoint, s.CollectKey, s.DemoLog)
	fmt.Fprintf(w, "  or write the JSON array to a file and:\n    bin/logagent -config %s config put FILE\n", s.AgentConfig)
	fmt.Fprintf(w, "  What the agent tails:   bin/logagent -config %s status\n", s.AgentConfig)
	fmt.Fprintln(w, "================================================================================")
	fmt.Fprintln(w)
}
