package logagent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/logagent/checkpoint"
	"github.com/logpipe/logpipe/logagent/collect"
	"github.com/logpipe/logpipe/logagent/container"
	"github.com/logpipe/logpipe/logagent/discover"
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
	cp    *checkpoint.Checkpointer // how far each file is acknowledged
	prod  *ship.Producer
	stats tailer.Stats
	m     *metrics
	hub   *discover.Hub // file system events
	zone  string        // the host's time zone, for entries without "timezone"

	// open, if set, replaces how harvesters open files (tests stand for a slow
	// file system with it).
	open func(path string) (*os.File, error)

	// mu guards the running entries. Config changes, Status and shutdown take it, so
	// nothing slow is done while holding it: no file is opened or examined and no
	// harvester is waited for (see apply).
	mu       sync.Mutex
	entries  map[string]*entryRun // by entry path (glob)
	stopping map[string]*entryRun // stopped runs that may not be done yet, by entry path
	runCtx   context.Context
	runs     sync.WaitGroup // every entryRun's goroutine
}

// entryRun is one running entry of the collection config.
type entryRun struct {
	entry  collect.Entry
	cancel context.CancelFunc
	done   chan struct{}
	prev   *entryRun // the stopped run of the same path, to wait for before starting

	mu    sync.Mutex
	files map[string]*tailer.Harvester // by file path

	refused map[string]bool // paths refused at the last scans; only runEntry uses it
}

func (c Config) shipConfig() ship.Config {
	return ship.Config{
		Brokers:             config.SplitList(c.Kafka.Brokers),
		RequiredAcks:        c.Kafka.RequiredAcks,
		Compression:         c.Kafka.Compression,
		MaxInFlightBytes:    c.Kafka.MaxInFlightBytes,
		FlushBytes:          c.Kafka.FlushBytes,
		FlushMessages:       c.Kafka.FlushMessages,
		FlushFrequency:      c.Kafka.FlushFrequency,
		MaxMessageBytes:     c.Kafka.MaxMessageBytes,
		MaxInFlightRequests: c.Kafka.MaxInFlightRequests,
		ClientID:            "logagent-" + c.Agent.Host,
		Security:            c.Kafka.Config,
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
	if cfg.Kafka.InsecureSkipVerify {
		log.Warn("[kafka] insecure_skip_verify = true: the broker's certificate is NOT verified; anyone on the path can read and change the logs")
	}
	log.Info("kafka security", "settings", cfg.Kafka.Config.String())
	a := &Agent{cfg: cfg, log: log, reg: reg, prod: prod, hub: discover.NewHub(log), zone: record.HostZone(), entries: map[string]*entryRun{}, stopping: map[string]*entryRun{}}
	a.m = newMetrics(a)
	a.cp = checkpoint.New(reg, a.m.acked)
	return a, nil
}

// Run runs the agent until ctx ends, then stops reading, waits (bounded) for the
// outstanding acknowledgements and saves the registry.
func (a *Agent) Run(ctx context.Context) error {
	cc, err := a.cfg.EtcdClientConfig()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(cc)
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
	wg.Add(3)
	go func() { defer wg.Done(); a.hub.Run(readCtx) }()
	go func() { defer wg.Done(); src.Run(readCtx, a.apply) }()
	go func() { defer wg.Done(); a.saveLoop(readCtx) }()

	<-ctx.Done()
	a.log.Info("stopping: no more reading; waiting for acknowledgements", "timeout", a.cfg.Agent.ShutdownTimeout)
	stopReading()
	wg.Wait()
	a.apply(nil) // stops every entry
	// Harvesters stop at once, unless one is stuck in a read of a file system that
	// does not answer: then the registry is saved without it (its offsets only move
	// on acknowledgements, so that is safe).
	stopped := make(chan struct{})
	go func() { a.runs.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(a.cfg.Agent.ShutdownTimeout):
		a.log.Warn("shutdown: harvesters still busy in file system calls; not waiting for them", "waited", a.cfg.Agent.ShutdownTimeout)
	}
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

// saveLoop saves the registry soon after acknowledged offsets move: a save starts
// as soon as something changed, covers every change made before it (a group commit),
// and saves are at least registry_flush apart. It also forgets the entries of files
// gone (clean_removed) or long untouched (clean_inactive): the ones let go since the
// last save, and every entry once a minute.
func (a *Agent) saveLoop(ctx context.Context) {
	gap := time.NewTimer(a.cfg.Agent.RegistryFlush)
	defer gap.Stop()
	full := time.NewTicker(time.Minute)
	defer full.Stop()
	clean := func(all bool) {
		if a.cfg.Agent.CleanRemoved || a.cfg.Agent.CleanInactive > 0 {
			if n := a.reg.Clean(a.cfg.Agent.CleanRemoved, a.cfg.Agent.CleanInactive, all); n > 0 {
				a.m.forgotten.Add(float64(n))
			}
		}
	}
	clean(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			clean(true)
			continue
		case <-a.reg.Changed():
		}
		clean(false)
		if err := a.reg.Save(); err != nil {
			a.log.Error("saving the registry failed", "err", err)
		}
		gap.Reset(a.cfg.Agent.RegistryFlush)
		select {
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}

// apply moves the running entries to cfg: added entries start, removed entries stop,
// changed entries restart; unchanged entries keep running untouched. It returns at
// once: a stopped entry winds down in its own goroutine, and an entry that replaces
// one of the same path waits there for it, not here, so that a harvester stuck in the
// file system never holds up a config change, Status or shutdown.
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
		delete(a.entries, e.Path)
		a.stopping[e.Path] = r
		a.log.Info("stopped collecting", "path", e.Path, "topic", r.entry.Topic)
	}
	if a.runCtx == nil || a.runCtx.Err() != nil {
		return
	}
	for _, e := range append(added, changed...) {
		ctx, cancel := context.WithCancel(a.runCtx)
		r := &entryRun{entry: e, cancel: cancel, done: make(chan struct{}), prev: a.stopping[e.Path],
			files: map[string]*tailer.Harvester{}, refused: map[string]bool{}}
		delete(a.stopping, e.Path)
		a.entries[e.Path] = r
		a.runs.Add(1)
		go func() {
			defer a.runs.Done()
			a.runEntry(ctx, r)
		}()
		a.log.Info("collecting", "path", e.Path, "topic", e.Topic)
	}
}

// runEntry finds the entry's files and runs a harvester for each. It expands the
// entry's glob at start, whenever the file system reports a change that could make
// a new path match (a file or directory created, renamed or removed in a watched
// directory), and every scan interval as the fallback for file systems without
// events (NFS) and for lost events. Changes of a file being read wake its harvester.
func (a *Agent) runEntry(ctx context.Context, r *entryRun) {
	defer close(r.done)
	defer func() {
		a.mu.Lock()
		if a.stopping[r.entry.Path] == r {
			delete(a.stopping, r.entry.Path)
		}
		a.mu.Unlock()
	}()
	if r.prev != nil {
		// The previous run of this path must be done before this one reads its
		// files: two harvesters of one file would ship its lines twice. r.done closes
		// only after prev.done, so a chain of quick changes stays ordered.
		<-r.prev.done
		r.prev = nil
	}
	if ctx.Err() != nil {
		return
	}
	ml, _ := r.entry.Multiline.Compile() // validated when the config was parsed
	pat, _ := discover.Compile(r.entry.Path)
	var decode func([]byte) (container.Piece, error)
	switch r.entry.Format {
	case "cri":
		decode = container.ParseCRI
	case "docker":
		decode = container.ParseDocker
	}
	access := r.entry.Access()
	rescan := make(chan struct{}, 1)
	signal := func() {
		select {
		case rescan <- struct{}{}:
		default:
		}
	}
	sub := a.hub.Subscribe(func(ev discover.Event) {
		if ev.Overflow {
			signal()
			r.wakeAll()
			return
		}
		r.mu.Lock()
		h := r.files[ev.Path]
		r.mu.Unlock()
		if h != nil {
			h.Wake()
		}
		if !ev.Write && pat.Relevant(ev.Path) {
			signal()
		}
	})
	defer sub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(a.cfg.Agent.ScanInterval)
	defer t.Stop()
	var scanned time.Time
	for {
		scanned = time.Now()
		paths, dirs := a.match(r, pat, access)
		if sub.SetDirs(dirs) {
			// What was created in a new directory before its watch was in place
			// made no event: look once more.
			signal()
		}
		for _, path := range paths {
			r.mu.Lock()
			_, running := r.files[path]
			if !running {
				h := tailer.New(tailer.Options{
					Path: path, FromEnd: r.entry.From == "end", MaxLineBytes: a.cfg.Agent.MaxLineBytes,
					PollInterval: a.cfg.Agent.PollInterval, MaxIdleInterval: a.cfg.Agent.MaxIdleInterval,
					MaxIdleIntervalEvents: a.cfg.Agent.MaxIdleIntervalEvents, Watched: a.watched(path, access),
					CloseInactive: a.cfg.Agent.CloseInactive,
					Registry:      a.reg, Checkpoints: a.cp, NewSink: a.sinks(r.entry),
					Log: a.log, Stats: &a.stats, Multiline: ml, Decode: decode, Access: access, Open: a.open,
				})
				r.files[path] = h
				wg.Add(1)
				go func() {
					defer wg.Done()
					h.Run(ctx)
					r.mu.Lock()
					delete(r.files, path)
					r.mu.Unlock()
					a.m.forgetFile(path)
					// The path may name a new file already (deleted and created again).
					signal()
				}()
			}
			r.mu.Unlock()
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-rescan:
				waiting = false
			case <-t.C:
				// The fallback scan: every scan_interval, unless events report every
				// change in the entry's directories; then it is a safety net.
				waiting = sub.Reliable() && time.Since(scanned) < a.cfg.Agent.MaxIdleIntervalEvents
			}
		}
	}
}

// watched returns the harvester's Options.Watched of path: whether events report
// every change of the file, which needs its directory watched on a local file system
// and the path to be no symlink (the target's directory is not watched).
func (a *Agent) watched(path string, access tailer.Access) func() bool {
	dir := filepath.Dir(path)
	return func() bool {
		if !a.hub.Reliable(dir) {
			return false
		}
		if !access.FollowSymlinks {
			return true // a symlink at the path is never read
		}
		fi, err := os.Lstat(path)
		return err == nil && fi.Mode().IsRegular()
	}
}

// wakeAll wakes every harvester of the entry (after lost file system events).
func (r *entryRun) wakeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.files {
		h.Wake()
	}
}

// match expands an entry's glob, leaving out its excludes and anything it may not
// read: symlinks it does not follow, and anything but regular files. A refused path is
// logged and counted once, until it changes. It also returns the directories to
// watch for new matches.
func (a *Agent) match(r *entryRun, pat *discover.Pattern, access tailer.Access) (out, dirs []string) {
	paths, dirs := pat.Expand()
	refused := map[string]bool{}
outer:
	for _, p := range paths {
		for _, x := range r.entry.Exclude {
			if ok, _ := filepath.Match(x, p); ok {
				continue outer
			}
		}
		err := access.Check(p)
		if re := (*tailer.RefusedError)(nil); errors.As(err, &re) {
			refused[p] = true
			if !r.refused[p] {
				a.stats.Refused(err)
				a.log.Error("refusing to read file", "path", p, "entry", r.entry.Path, "err", err)
			}
			continue
		}
		if err == nil {
			out = append(out, p)
		}
	}
	r.refused = refused
	return out, dirs
}

// sinks returns the tailer's NewSink of an entry: each file incarnation's lines go to
// a fileSink, which builds their Kafka records (the format is internal/record's) and
// sends them, with the incarnation's checkpoint to tell of Kafka's acknowledgements.
func (a *Agent) sinks(e collect.Entry) func(*tailer.FileState) tailer.Sink {
	host := []byte(a.cfg.Agent.Host)
	// The entry's own headers, shared by all its records: dataset, timezone, then its
	// fields, sorted by name.
	var entry []*sarama.RecordHeader
	if e.Dataset != "" {
		entry = append(entry, &sarama.RecordHeader{Key: []byte(record.Dataset), Value: []byte(e.Dataset)})
	}
	if tz := cmp.Or(e.Timezone, a.zone); tz != "" {
		entry = append(entry, &sarama.RecordHeader{Key: []byte(record.Timezone), Value: []byte(tz)})
	}
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		entry = append(entry, &sarama.RecordHeader{Key: []byte(record.FieldPrefix + k), Value: []byte(e.Fields[k])})
	}
	filter, _ := e.LineFilter() // validated with the config
	return func(fs *tailer.FileState) tailer.Sink {
		s := &fileSink{route: a.prod.Route(), topic: e.Topic, cp: fs.Checkpoint, m: a.m.file(fs.Path), filter: filter}
		s.static = append(s.static,
			&sarama.RecordHeader{Key: hdrHost, Value: host},
			&sarama.RecordHeader{Key: hdrPath, Value: []byte(fs.Path)},
			&sarama.RecordHeader{Key: hdrFileID, Value: []byte(fs.FileID)})
		s.static = append(s.static, entry...)
		if e.Format == "cri" || e.Format == "docker" {
			if k, ok := container.FromPath(fs.Path); ok {
				for _, h := range [][2]string{{record.PodName, k.Pod}, {record.Namespace, k.Namespace}, {record.ContainerName, k.Container}, {record.ContainerID, k.ContainerID}} {
					s.static = append(s.static, &sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
				}
			}
		}
		switch e.Key {
		case "", "file":
			s.key = []byte(a.cfg.Agent.Host + ":" + fs.Path)
		case "host":
			s.key = host
		}
		return s
	}
}

// fileSink sends the lines of one file incarnation. What depends only on the file
// (record key, shared headers) is built once; each line's bytes and headers are cut
// from per-file arenas and slabs, freed once all their records are acknowledged.
// Only the file's harvester goroutine calls it.
type fileSink struct {
	route  *ship.Route // the file's records all go to one partition
	topic  string
	cp     *checkpoint.File
	static []*sarama.RecordHeader // shared by the file's records: host, path, file_id, then the entry's and container names
	key    []byte                 // nil: no key
	filter *collect.LineFilter    // nil: every line is sent
	m      *fileMetrics
	arena  []byte                 // where the next lines' bytes go
	slab   []lineHeaders          // where the next lines' headers go
	ptrs   []*sarama.RecordHeader // where the next lines' header lists go
}

// Largest per-file allocations that records are cut from.
const (
	arenaBytes = 64 << 10
	slabLines  = 256
)

// Send builds l's record and hands it to the producer, which tells the file's
// checkpoint once Kafka has it.
func (s *fileSink) Send(ctx context.Context, l tailer.Line) error {
	if !s.filter.Keep(l.Data) {
		// Left out by include_lines / exclude_lines: acknowledged at once, so that
		// the file's offset moves past it as past a line Kafka has.
		s.m.linesRead.Inc()
		s.m.bytesRead.Add(float64(l.Next - l.Offset))
		s.m.linesFiltered.Inc()
		s.cp.Ack(s.cp.Track(l.Next))
		return nil
	}
	// The value and the offset header's value are cut from the arena, the headers
	// and header lists from the slabs; the file's own headers are shared by its lines.
	need := len(l.Data) + 20 + record.TimeBytes
	if cap(s.arena)-len(s.arena) < need {
		// Arenas grow while the file is busy and start small again after it idled.
		s.arena = make([]byte, 0, max(min(2*cap(s.arena), arenaBytes), 512, need))
	}
	start := len(s.arena)
	s.arena = append(s.arena, l.Data...)
	s.arena = record.AppendOffset(s.arena, l.Offset)
	value := s.arena[start : start+len(l.Data) : start+len(l.Data)]
	off := s.arena[start+len(l.Data) : len(s.arena) : len(s.arena)]
	if len(s.slab) == cap(s.slab) {
		s.slab = make([]lineHeaders, 0, max(min(2*cap(s.slab), slabLines), 4))
	}
	s.slab = append(s.slab, lineHeaders{offset: sarama.RecordHeader{Key: hdrOffset, Value: off}})
	h := &s.slab[len(s.slab)-1]
	n := len(s.static) + 4 // offset, split, stream, event.created
	if cap(s.ptrs)-len(s.ptrs) < n {
		s.ptrs = make([]*sarama.RecordHeader, 0, max(min(2*cap(s.ptrs), slabLines*n), 4*n))
	}
	list := s.ptrs[len(s.ptrs):len(s.ptrs)]
	list = append(list, s.static[0], s.static[1], &h.offset)
	list = append(list, s.static[2:]...)
	if l.Split {
		list = append(list, splitHeader)
	}
	ts := l.Read
	if ts.IsZero() {
		ts = time.Now()
	}
	if !l.Time.IsZero() {
		// A container log: the record's time is the runtime's; when the agent read
		// the line is event.created.
		cs := len(s.arena)
		s.arena = record.AppendTime(s.arena, ts)
		h.created = sarama.RecordHeader{Key: hdrCreated, Value: s.arena[cs:len(s.arena):len(s.arena)]}
		list = append(list, &h.created)
		ts = l.Time
	}
	switch l.Stream {
	case "stdout":
		list = append(list, stdoutHeader)
	case "stderr":
		list = append(list, stderrHeader)
	}
	s.ptrs = s.ptrs[:len(s.ptrs)+len(list)]
	rec := ship.Record{Topic: s.topic, Key: s.key, Value: value, Timestamp: ts, Headers: list[:len(list):len(list)]}
	s.m.linesRead.Inc()
	s.m.bytesRead.Add(float64(l.Next - l.Offset))
	return s.route.Send(ctx, rec, s.cp, s.cp.Track(l.Next))
}

// Idle lets go of the arena and slabs when the file stops growing, so that idle
// files hold no memory beyond their records in flight.
func (s *fileSink) Idle() { s.arena, s.slab, s.ptrs = nil, nil, nil }

// lineHeaders holds a record's own headers.
type lineHeaders struct {
	offset  sarama.RecordHeader
	created sarama.RecordHeader // container logs: when the line was read
}

var (
	hdrHost     = []byte(record.Host)
	hdrPath     = []byte(record.Path)
	hdrOffset   = []byte(record.Offset)
	hdrFileID   = []byte(record.FileID)
	hdrCreated  = []byte(record.Created)
	splitHeader = &sarama.RecordHeader{Key: []byte(record.Split), Value: []byte(record.SplitOn)}
	// The stream of a container log line.
	stdoutHeader = &sarama.RecordHeader{Key: []byte(record.Stream), Value: []byte(record.Stdout)}
	stderrHeader = &sarama.RecordHeader{Key: []byte(record.Stream), Value: []byte(record.Stderr)}
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

// Status lists every file being tailed. The files are examined after the agent's
// lock is released.
func (a *Agent) Status() []FileStatus {
	type file struct {
		path, topic string
		h           *tailer.Harvester
	}
	var files []file
	a.mu.Lock()
	for _, r := range a.entries {
		r.mu.Lock()
		for path, h := range r.files {
			files = append(files, file{path, r.entry.Topic, h})
		}
		r.mu.Unlock()
	}
	a.mu.Unlock()
	out := make([]FileStatus, 0, len(files))
	for _, f := range files {
		st := FileStatus{Path: f.path, Topic: f.topic}
		if fs := f.h.State(); fs != nil {
			st.FileID, st.Outstanding, st.Offset = fs.FileID, fs.Checkpoint.Outstanding(), fs.Checkpoint.Offset()
		}
		if fi, err := os.Stat(f.path); err == nil {
			st.Size = fi.Size()
			st.Lag = max(0, st.Size-st.Offset)
		}
		out = append(out, st)
	}
	sortStatus(out)
	return out
}
