package logagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/logagent/collect"
	"github.com/logpipe/logpipe/logagent/registry"
	"github.com/logpipe/logpipe/logagent/ship"
	"github.com/logpipe/logpipe/logagent/tailer"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Agent ships the files of its collection config.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	reg   *registry.Registry
	prod  *ship.Producer
	stats tailer.Stats
	m     *metrics

	mu      sync.Mutex
	entries map[string]*entryRun // by entry path (glob)
	runCtx  context.Context
}

// entryRun is one running entry of the collection config.
type entryRun struct {
	entry  collect.Entry
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	files map[string]*tailer.Harvester // by file path
}

func (c Config) shipConfig() ship.Config {
	return ship.Config{
		Brokers:          config.SplitList(c.Kafka.Brokers),
		RequiredAcks:     c.Kafka.RequiredAcks,
		Compression:      c.Kafka.Compression,
		MaxInFlightBytes: c.Kafka.MaxInFlightBytes,
		FlushBytes:       c.Kafka.FlushBytes,
		FlushMessages:    c.Kafka.FlushMessages,
		FlushFrequency:   c.Kafka.FlushFrequency,
		MaxMessageBytes:  c.Kafka.MaxMessageBytes,
		ClientID:         "logagent-" + c.Agent.Host,
	}
}

// New prepares an agent: it opens the registry in the data directory.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	reg, err := registry.Open(cfg.Agent.DataDir)
	if err != nil {
		return nil, err
	}
	prod, err := ship.New(cfg.shipConfig(), log)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, reg: reg, prod: prod, entries: map[string]*entryRun{}}
	a.m = newMetrics(a)
	return a, nil
}

// Run runs the agent until ctx ends, then stops reading, waits (bounded) for the
// outstanding acknowledgements and saves the registry.
func (a *Agent) Run(ctx context.Context) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   config.SplitList(a.cfg.Etcd.Endpoints),
		DialTimeout: a.cfg.Etcd.DialTimeout,
		Logger:      nil,
	})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	a.mu.Lock()
	a.runCtx = readCtx
	a.mu.Unlock()

	src := &collect.Source{
		Client: cli, Key: a.cfg.CollectKey(), CacheDir: a.cfg.Agent.DataDir, Log: a.log,
		Rejected: func(error) { a.m.configRejected.Inc() },
		Applied:  func() { a.m.configApplied.Inc() },
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src.Run(readCtx, a.apply) }()
	go func() { defer wg.Done(); a.saveLoop(readCtx) }()

	<-ctx.Done()
	a.log.Info("stopping: no more reading; waiting for acknowledgements", "timeout", a.cfg.Agent.ShutdownTimeout)
	stopReading()
	wg.Wait()
	a.apply(nil) // stops every harvester
	perr := a.prod.Close(a.cfg.Agent.ShutdownTimeout)
	if perr != nil {
		a.log.Warn("shutdown", "err", perr)
	}
	if err := a.reg.Save(); err != nil {
		return err
	}
	a.log.Info("stopped; registry saved")
	return nil
}

func (a *Agent) saveLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Agent.RegistryFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.reg.Save(); err != nil {
				a.log.Error("saving the registry failed", "err", err)
			}
		}
	}
}

// apply moves the running entries to cfg: added entries start, removed entries stop,
// changed entries restart; unchanged entries keep running untouched.
func (a *Agent) apply(cfg collect.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var prev collect.Config
	for _, r := range a.entries {
		prev = append(prev, r.entry)
	}
	added, removed, changed := collect.Diff(prev, cfg)
	for _, e := range append(removed, changed...) {
		r := a.entries[e.Path]
		r.cancel()
		<-r.done
		delete(a.entries, e.Path)
		a.log.Info("stopped collecting", "path", e.Path, "topic", r.entry.Topic)
	}
	if a.runCtx == nil || a.runCtx.Err() != nil {
		return
	}
	for _, e := range append(added, changed...) {
		ctx, cancel := context.WithCancel(a.runCtx)
		r := &entryRun{entry: e, cancel: cancel, done: make(chan struct{}), files: map[string]*tailer.Harvester{}}
		a.entries[e.Path] = r
		go a.runEntry(ctx, r)
		a.log.Info("collecting", "path", e.Path, "topic", e.Topic)
	}
}

// runEntry expands the entry's glob now and every scan interval, and runs a harvester
// for each matching file.
func (a *Agent) runEntry(ctx context.Context, r *entryRun) {
	defer close(r.done)
	ml, _ := r.entry.Multiline.Compile() // validated when the config was parsed
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(a.cfg.Agent.ScanInterval)
	defer t.Stop()
	for {
		for _, path := range match(r.entry) {
			r.mu.Lock()
			_, running := r.files[path]
			if !running {
				h := tailer.New(tailer.Options{
					Path: path, FromEnd: r.entry.From == "end", MaxLineBytes: a.cfg.Agent.MaxLineBytes,
					PollInterval: a.cfg.Agent.PollInterval, MaxIdleInterval: a.cfg.Agent.MaxIdleInterval,
					Registry: a.reg, Log: a.log, Stats: &a.stats, Multiline: ml,
					Emit: a.emitter(r.entry),
					Idle: func(fs *tailer.FileState) {
						if fc, ok := fs.Cache.(*fileCache); ok {
							fc.idle()
						}
					},
				})
				r.files[path] = h
				wg.Add(1)
				go func() {
					defer wg.Done()
					h.Run(ctx)
					r.mu.Lock()
					delete(r.files, path)
					r.mu.Unlock()
				}()
			}
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// match expands an entry's glob, leaving out its excludes and anything not a file.
func match(e collect.Entry) []string {
	paths, _ := filepath.Glob(e.Path)
	var out []string
outer:
	for _, p := range paths {
		for _, x := range e.Exclude {
			if ok, _ := filepath.Match(x, p); ok {
				continue outer
			}
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

// emitter builds the Kafka record of a line (see the README's record format) and
// sends it; the registry offset moves once Kafka acknowledged it. What depends only on
// the file is computed once per file incarnation and cached on its FileState.
func (a *Agent) emitter(e collect.Entry) tailer.Emit {
	host := []byte(a.cfg.Agent.Host)
	return func(ctx context.Context, fs *tailer.FileState, l tailer.Line) error {
		fc, _ := fs.Cache.(*fileCache)
		if fc == nil {
			fc = &fileCache{
				fs:     fs,
				host:   &sarama.RecordHeader{Key: hdrHost, Value: host},
				path:   &sarama.RecordHeader{Key: hdrPath, Value: []byte(fs.Path)},
				fileID: &sarama.RecordHeader{Key: hdrFileID, Value: []byte(fs.FileID)},
				m:      a.m.file(fs.Path),
			}
			switch e.Key {
			case "", "file":
				fc.key = []byte(a.cfg.Agent.Host + ":" + fs.Path)
			case "host":
				fc.key = host
			}
			fs.Cache = fc
		}
		// The value and the offset header's value are cut from the file's byte arena,
		// the headers from its header slab; the host, path and file_id headers are
		// shared by the file's lines. An arena or slab is freed once all its records
		// are acknowledged.
		need := len(l.Data) + 20
		if cap(fc.arena)-len(fc.arena) < need {
			// Arenas grow while the file is busy and start small again after it idled.
			fc.arena = make([]byte, 0, max(min(2*cap(fc.arena), arenaBytes), 512, need))
		}
		start := len(fc.arena)
		fc.arena = append(fc.arena, l.Data...)
		fc.arena = strconv.AppendInt(fc.arena, l.Offset, 10)
		value := fc.arena[start : start+len(l.Data) : start+len(l.Data)]
		off := fc.arena[start+len(l.Data) : len(fc.arena) : len(fc.arena)]
		if len(fc.slab) == cap(fc.slab) {
			fc.slab = make([]lineHeaders, 0, max(min(2*cap(fc.slab), slabLines), 4))
		}
		fc.slab = append(fc.slab, lineHeaders{offset: sarama.RecordHeader{Key: hdrOffset, Value: off}})
		h := &fc.slab[len(fc.slab)-1]
		h.list = [5]*sarama.RecordHeader{fc.host, fc.path, &h.offset, fc.fileID, splitHeader}
		ts := l.Read
		if ts.IsZero() {
			ts = time.Now()
		}
		rec := ship.Record{Topic: e.Topic, Key: fc.key, Value: value, Timestamp: ts, Headers: h.list[:4]}
		if l.Split {
			rec.Headers = h.list[:5]
		}
		fc.m.linesRead.Inc()
		fc.m.bytesRead.Add(float64(l.Next - l.Offset))
		return a.prod.Send(ctx, rec, fc, fs.Track(l.Next))
	}
}

// fileCache is what the emitter derives once per file incarnation. It is the
// producer's Acker of the file's records.
type fileCache struct {
	fs                 *tailer.FileState
	host, path, fileID *sarama.RecordHeader // shared by the file's records
	key                []byte               // nil: no key
	m                  *fileMetrics
	arena              []byte        // where the next lines' bytes go
	slab               []lineHeaders // where the next lines' headers go
}

// idle lets go of the file's arena and slab when it stops growing, so that idle
// files hold no memory beyond their records in flight.
func (fc *fileCache) idle() { fc.arena, fc.slab = nil, nil }

// Largest per-file allocations that records are cut from.
const (
	arenaBytes = 64 << 10
	slabLines  = 256
)

// Ack moves the file's acknowledged offset once Kafka has line seq.
func (fc *fileCache) Ack(seq uint64) {
	fc.m.linesAcked.Inc()
	if n := fc.fs.Done(seq); n > 0 {
		fc.m.bytesAcked.Add(float64(n))
	}
}

// lineHeaders holds a record's header list and its own offset header.
type lineHeaders struct {
	list   [5]*sarama.RecordHeader
	offset sarama.RecordHeader
}

var (
	hdrHost     = []byte("host")
	hdrPath     = []byte("path")
	hdrOffset   = []byte("offset")
	hdrFileID   = []byte("file_id")
	splitHeader = &sarama.RecordHeader{Key: []byte("split"), Value: []byte("1")}
)

// FileStatus is one tailed file as `logagent status` shows it.
type FileStatus struct {
	Path        string `json:"path"`
	Topic       string `json:"topic"`
	FileID      string `json:"file_id"`
	Offset      int64  `json:"offset"` // acknowledged
	Size        int64  `json:"size"`
	Lag         int64  `json:"lag"` // bytes not yet acknowledged
	Outstanding int    `json:"outstanding"`
}

// Status lists every file being tailed.
func (a *Agent) Status() []FileStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []FileStatus
	for _, r := range a.entries {
		r.mu.Lock()
		for path, h := range r.files {
			st := FileStatus{Path: path, Topic: r.entry.Topic}
			if fs := h.State(); fs != nil {
				st.FileID, st.Outstanding = fs.FileID, fs.Outstanding()
				if e, ok := a.reg.Get(fs.Key); ok {
					st.Offset = e.Offset
				}
			}
			if fi, err := os.Stat(path); err == nil {
				st.Size = fi.Size()
				st.Lag = max(0, st.Size-st.Offset)
			}
			out = append(out, st)
		}
		r.mu.Unlock()
	}
	sortStatus(out)
	return out
}
