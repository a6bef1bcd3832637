package storage

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logpipe/logpipe/internal/atomicfile"
	"github.com/logpipe/logpipe/internal/topicname"
)

const (
	cleanShutdownFile = ".clean_shutdown"
	lockFile          = ".lock"
	topicsFile        = "topics.json"
	producerIDFile    = "producer-id"
	producerIDBlock   = 1000
)

// Options configure a Store.
type Options struct {
	Dir                    string        // data directory; one sub-directory per partition
	Defaults               TopicConfig   // for topics created without explicit configs
	Logger                 *slog.Logger  // nil discards
	RetentionCheckInterval time.Duration // how often retention runs; default 5 minutes
	Now                    func() time.Time

	// MaxOpenSegments bounds the sealed segments whose log file is open at once;
	// 0 = DefaultMaxOpenSegments, capped at a quarter of RLIMIT_NOFILE.
	MaxOpenSegments int
	// MaxTopics and MaxPartitions bound the topics and the partitions (of all topics)
	// that CreateTopic and CreatePartitions make; 0 = DefaultMaxTopics and
	// DefaultMaxPartitions, -1 = unlimited. Internal topics made with
	// CreateInternalTopic count but are never refused.
	MaxTopics     int
	MaxPartitions int
}

// Defaults of Options.MaxTopics and Options.MaxPartitions.
const (
	DefaultMaxTopics     = 1000
	DefaultMaxPartitions = 10000
)

// MaxPartitionsPerTopic is the most partitions one topic may have.
const MaxPartitionsPerTopic = 10000

// Stats are counters of the store's resource limits.
type Stats struct {
	OpenSegmentFiles  int   // sealed segments whose file the cache holds open
	SegmentFileOpens  int64 // sealed segment files opened on demand since Open
	SegmentEvictions  int64 // files the cache closed to stay within MaxOpenSegments
	TopicsRefused     int64 // topics not created because of MaxTopics
	PartitionsRefused int64 // creations refused because of MaxPartitions
}

// Store is the broker's storage: every topic and partition under one directory.
type Store struct {
	opts Options
	log  *slog.Logger
	lock *os.File

	cache *fileCache

	mu     sync.RWMutex
	topics map[string]*Topic
	closed bool

	topicsRefused, partitionsRefused atomic.Int64

	pidMu   sync.Mutex
	pidNext int64 // next producer ID to hand out
	pidEnd  int64 // end of the persisted block

	stop chan struct{}
	done chan struct{}
}

// Dir is the directory the store keeps its topics in.
func (s *Store) Dir() string { return s.opts.Dir }

// Topic is a named set of partitions with one configuration.
type Topic struct {
	name string
	id   [16]byte

	mu        sync.RWMutex
	overrides map[string]string // configs set for this topic, by Kafka name
	cfg       TopicConfig
	parts     []*Partition
}

// topicMeta is a topic's entry in topics.json.
type topicMeta struct {
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Open opens the store in opts.Dir, creating it if needed, and recovers every
// partition. A second Open of the same directory fails while the first is open.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = 5 * time.Minute
	}
	if opts.Defaults == (TopicConfig{}) {
		opts.Defaults = DefaultTopicConfig()
	}
	if opts.MaxTopics == 0 {
		opts.MaxTopics = DefaultMaxTopics
	}
	if opts.MaxPartitions == 0 {
		opts.MaxPartitions = DefaultMaxPartitions
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data directory %s is in use by another broker: %w", opts.Dir, err)
	}
	s := &Store{opts: opts, log: opts.Logger, lock: lock, cache: newFileCache(opts.MaxOpenSegments), topics: map[string]*Topic{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.load(); err != nil {
		s.closePartitions()
		lock.Close()
		return nil, err
	}
	go s.retentionLoop()
	return s, nil
}

func (s *Store) load() error {
	markerPath := filepath.Join(s.opts.Dir, cleanShutdownFile)
	_, err := os.Stat(markerPath)
	clean := err == nil
	data, err := os.ReadFile(filepath.Join(s.opts.Dir, topicsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", topicsFile, err)
	}
	metas := map[string]topicMeta{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &metas); err != nil {
			return fmt.Errorf("parse %s: %w", topicsFile, err)
		}
	}
	if !clean && len(metas) > 0 {
		s.log.Warn("unclean shutdown: validating the tail of every partition")
	}
	names := make([]string, 0, len(metas))
	for name := range metas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := metas[name]
		t := &Topic{name: name, overrides: m.Configs}
		if _, err := hex.Decode(t.id[:], []byte(m.ID)); err != nil {
			return fmt.Errorf("topic %s: bad id %q", name, m.ID)
		}
		cfg, err := s.loadedConfig(name, m.Configs)
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		t.cfg = cfg
		s.topics[name] = t
		for i := int32(0); i < m.Partitions; i++ {
			p, err := openPartition(s.partitionDir(name, i), name, i, t.Config, clean, s.cache, s.log, s.opts.Now)
			if err != nil {
				return fmt.Errorf("open %s-%d: %w", name, i, err)
			}
			t.parts = append(t.parts, p)
		}
	}
	s.removeLeftovers()
	// From here on the data changes: a crash must be recovered.
	if err := os.Remove(markerPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove clean-shutdown marker: %w", err)
	}
	return atomicfile.SyncDir(s.opts.Dir)
}

// removeLeftovers deletes directories of deleted topics and of partitions that no
// topic owns (a crash during DeleteTopic).
func (s *Store) removeLeftovers() {
	entries, _ := os.ReadDir(s.opts.Dir)
	owned := map[string]bool{}
	for name, t := range s.topics {
		for i := range t.parts {
			owned[filepath.Base(s.partitionDir(name, int32(i)))] = true
		}
	}
	for _, e := range entries {
		if e.IsDir() && !owned[e.Name()] {
			s.log.Info("removing directory of a deleted topic", "dir", e.Name())
			os.RemoveAll(filepath.Join(s.opts.Dir, e.Name()))
		}
	}
}

func (s *Store) partitionDir(topic string, i int32) string {
	return filepath.Join(s.opts.Dir, topic+"-"+strconv.Itoa(int(i)))
}

// loadedConfig applies the overrides stored in topics.json to the store defaults.
// Values below the minimums of segment.bytes and segment.ms, accepted by older
// versions, are raised to the minimum with a warning; internal topics (named "__…")
// keep what the broker itself set.
func (s *Store) loadedConfig(topic string, overrides map[string]string) (TopicConfig, error) {
	cfg := s.opts.Defaults
	for k, v := range overrides {
		err := cfg.Set(k, v)
		if err == nil {
			continue
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		switch {
		case perr != nil || n < 1:
			return cfg, err
		case k == "segment.bytes":
			cfg.SegmentBytes = n
		case k == "segment.ms":
			cfg.SegmentMs = n
		default:
			return cfg, err
		}
		if !IsInternalTopic(topic) {
			cfg.SegmentBytes = max(cfg.SegmentBytes, MinSegmentBytes)
			cfg.SegmentMs = max(cfg.SegmentMs, MinSegmentMs)
			s.log.Warn("raised a topic config below the minimum", "topic", topic, "config", k, "was", v)
		}
	}
	return cfg, nil
}

// overridesOf lists the configs of cfg that differ from the store defaults.
func (s *Store) overridesOf(cfg TopicConfig) map[string]string {
	o := map[string]string{}
	for _, e := range cfg.entriesAgainst(s.opts.Defaults) {
		if !e.Default {
			o[e.Name] = e.Value
		}
	}
	return o
}

// saveTopics writes topics.json atomically. Callers hold s.mu.
func (s *Store) saveTopics() error {
	metas := make(map[string]topicMeta, len(s.topics))
	for name, t := range s.topics {
		t.mu.RLock()
		metas[name] = topicMeta{ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.parts)), Configs: t.overrides}
		t.mu.RUnlock()
	}
	data, err := json.MarshalIndent(metas, "", "  ")
	if err != nil {
		return fmt.Errorf("encode topics: %w", err)
	}
	return atomicfile.Write(filepath.Join(s.opts.Dir, topicsFile), data)
}

// ValidateTopicName checks a topic name against Kafka's rules; the error wraps
// ErrInvalidTopic.
func ValidateTopicName(name string) error {
	if err := topicname.Validate(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTopic, err)
	}
	return nil
}

// CreateTopic creates a topic with the given number of partitions and configuration.
// It fails with ErrPolicyViolation when the topic would exceed MaxTopics or
// MaxPartitions.
func (s *Store) CreateTopic(name string, partitions int32, cfg TopicConfig) (*Topic, error) {
	return s.createTopic(name, partitions, cfg, true)
}

// CreateInternalTopic is CreateTopic for the broker's own topics
// (__consumer_offsets): the topic counts towards MaxTopics and MaxPartitions but is
// never refused because of them, so clients cannot lock the broker out of it.
func (s *Store) CreateInternalTopic(name string, partitions int32, cfg TopicConfig) (*Topic, error) {
	return s.createTopic(name, partitions, cfg, false)
}

// CheckCreate reports whether a topic of the given partitions could be created now
// within MaxTopics and MaxPartitions (for requests that only validate).
func (s *Store) CheckCreate(partitions int32) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkLimitsLocked(1, int(partitions), false)
}

// checkLimitsLocked checks that newTopics more topics and newParts more partitions
// stay within the limits; count says whether a refusal is counted in Stats.
func (s *Store) checkLimitsLocked(newTopics, newParts int, count bool) error {
	if max := s.opts.MaxTopics; max >= 0 && newTopics > 0 && len(s.topics)+newTopics > max {
		if count {
			s.topicsRefused.Add(1)
		}
		return fmt.Errorf("%w: the broker has %d topics, the limit is %d ([log] max_topics)", ErrPolicyViolation, len(s.topics), max)
	}
	if max := s.opts.MaxPartitions; max >= 0 && newParts > 0 {
		have := 0
		for _, t := range s.topics {
			t.mu.RLock()
			have += len(t.parts)
			t.mu.RUnlock()
		}
		if have+newParts > max {
			if count {
				s.partitionsRefused.Add(1)
			}
			return fmt.Errorf("%w: the broker has %d partitions, %d more would exceed the limit of %d ([log] max_partitions)", ErrPolicyViolation, have, newParts, max)
		}
	}
	return nil
}

// Stats returns the counters of the store's resource limits.
func (s *Store) Stats() Stats {
	return Stats{
		OpenSegmentFiles:  s.cache.cachedCount(),
		SegmentFileOpens:  s.cache.opens.Load(),
		SegmentEvictions:  s.cache.evictions.Load(),
		TopicsRefused:     s.topicsRefused.Load(),
		PartitionsRefused: s.partitionsRefused.Load(),
	}
}

func (s *Store) createTopic(name string, partitions int32, cfg TopicConfig, limited bool) (*Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if partitions < 1 || partitions > MaxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: %d, want 1 to %d", ErrInvalidPartitions, partitions, MaxPartitionsPerTopic)
	}
	if cfg == (TopicConfig{}) {
		cfg = s.opts.Defaults
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.topics[name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrTopicExists, name)
	}
	if limited {
		if err := s.checkLimitsLocked(1, int(partitions), true); err != nil {
			return nil, err
		}
	}
	t := &Topic{name: name, cfg: cfg, overrides: s.overridesOf(cfg)}
	if _, err := rand.Read(t.id[:]); err != nil {
		return nil, fmt.Errorf("topic id: %w", err)
	}
	for i := int32(0); i < partitions; i++ {
		os.RemoveAll(s.partitionDir(name, i)) // a leftover of a deleted topic of the same name
		p, err := openPartition(s.partitionDir(name, i), name, i, t.Config, true, s.cache, s.log, s.opts.Now)
		if err != nil {
			for _, p := range t.parts {
				p.remove()
			}
			return nil, fmt.Errorf("create %s-%d: %w", name, i, err)
		}
		t.parts = append(t.parts, p)
	}
	s.topics[name] = t
	if err := s.saveTopics(); err != nil {
		delete(s.topics, name)
		for _, p := range t.parts {
			p.remove()
		}
		return nil, err
	}
	s.log.Info("created topic", "topic", name, "partitions", partitions)
	return t, nil
}

// DeleteTopic deletes a topic and its data.
func (s *Store) DeleteTopic(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	delete(s.topics, name)
	if err := s.saveTopics(); err != nil {
		s.topics[name] = t
		return err
	}
	for _, p := range t.Partitions() {
		if err := p.remove(); err != nil {
			s.log.Warn("removing partition directory failed; it is removed at the next start", "dir", p.dir, "err", err)
		}
	}
	s.log.Info("deleted topic", "topic", name)
	return nil
}

// CheckGrow reports whether CreatePartitions(name, total) would be accepted now.
func (s *Store) CheckGrow(name string, total int32) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, err := s.checkGrowLocked(name, total, false)
	return err
}

func (s *Store) checkGrowLocked(name string, total int32, count bool) (*Topic, error) {
	t, ok := s.topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	t.mu.RLock()
	have := int32(len(t.parts))
	t.mu.RUnlock()
	if total <= have || total > MaxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: topic %s has %d partitions, asked for %d (at most %d)", ErrInvalidPartitions, name, have, total, MaxPartitionsPerTopic)
	}
	return t, s.checkLimitsLocked(0, int(total-have), count)
}

// CreatePartitions grows a topic to total partitions.
func (s *Store) CreatePartitions(name string, total int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.checkGrowLocked(name, total, true)
	if err != nil {
		return err
	}
	have := int32(len(t.Partitions()))
	var added []*Partition
	for i := have; i < total; i++ {
		os.RemoveAll(s.partitionDir(name, i))
		p, err := openPartition(s.partitionDir(name, i), name, i, t.Config, true, s.cache, s.log, s.opts.Now)
		if err != nil {
			for _, p := range added {
				p.remove()
			}
			return fmt.Errorf("create %s-%d: %w", name, i, err)
		}
		added = append(added, p)
	}
	t.mu.Lock()
	t.parts = append(t.parts, added...)
	t.mu.Unlock()
	return s.saveTopics()
}

// SetTopicConfig replaces a topic's configuration.
func (s *Store) SetTopicConfig(name string, cfg TopicConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	t.mu.Lock()
	t.cfg, t.overrides = cfg, s.overridesOf(cfg)
	t.mu.Unlock()
	return s.saveTopics()
}

// Topic returns the named topic, or nil.
func (s *Store) Topic(name string) *Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.topics[name]
}

// Topics returns every topic, sorted by name.
func (s *Store) Topics() []*Topic {
	s.mu.RLock()
	ts := make([]*Topic, 0, len(s.topics))
	for _, t := range s.topics {
		ts = append(ts, t)
	}
	s.mu.RUnlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

// NextProducerID allocates a producer ID. IDs never repeat, across restarts too:
// blocks of IDs are reserved on disk before any of them is handed out.
func (s *Store) NextProducerID() (int64, error) {
	s.pidMu.Lock()
	defer s.pidMu.Unlock()
	if s.pidNext == s.pidEnd {
		path := filepath.Join(s.opts.Dir, producerIDFile)
		start := int64(0)
		if data, err := os.ReadFile(path); err == nil && len(data) == 8 {
			start = int64(binary.BigEndian.Uint64(data))
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("read producer id block: %w", err)
		}
		if start < s.pidEnd {
			start = s.pidEnd
		}
		if err := atomicfile.Write(path, binary.BigEndian.AppendUint64(nil, uint64(start+producerIDBlock))); err != nil {
			return 0, err
		}
		s.pidNext, s.pidEnd = start, start+producerIDBlock
	}
	id := s.pidNext
	s.pidNext++
	return id, nil
}

func (s *Store) retentionLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.ApplyRetention()
		}
	}
}

// ApplyRetention deletes the segments that retention.ms and retention.bytes no longer
// keep. The Store calls it every RetentionCheckInterval.
func (s *Store) ApplyRetention() {
	now := s.opts.Now()
	for _, t := range s.Topics() {
		cfg := t.Config()
		if cfg.CleanupPolicy == "compact" {
			// No log cleaner: a compacted topic is bounded by retention.bytes alone (off by
			// default). __consumer_offsets sets it and rewrites its live records before
			// they could fall out of it (broker/group).
			cfg.RetentionMs = -1
		}
		for _, p := range t.Partitions() {
			p.applyRetention(cfg, now)
		}
	}
}

// Close flushes and fsyncs every partition and marks the shutdown clean, so that the
// next Open skips validation.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := s.closePartitions()
	if err == nil {
		err = atomicfile.Write(filepath.Join(s.opts.Dir, cleanShutdownFile), nil)
	}
	s.lock.Close()
	return err
}

func (s *Store) closePartitions() error {
	var first error
	for _, t := range s.topics {
		for _, p := range t.Partitions() {
			if err := p.close(); err != nil && first == nil {
				first = fmt.Errorf("close %s-%d: %w", p.topic, p.index, err)
			}
		}
	}
	return first
}

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// ID is the topic's UUID, chosen at creation.
func (t *Topic) ID() [16]byte { return t.id }

// Config is the topic's current configuration.
func (t *Topic) Config() TopicConfig {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.cfg
}

// Partitions returns the topic's partitions in order.
func (t *Topic) Partitions() []*Partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]*Partition(nil), t.parts...)
}

// Partition returns partition i, or nil if there is none.
func (t *Topic) Partition(i int32) *Partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if i < 0 || int(i) >= len(t.parts) {
		return nil
	}
	return t.parts[i]
}
