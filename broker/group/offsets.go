package group

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// OffsetsTopic is the internal topic that holds committed offsets.
const OffsetsTopic = "__consumer_offsets"

// topicPartition names a partition of a user topic.
type topicPartition struct {
	topic     string
	partition int32
}

// offsetLog is the committed-offset state of the groups that map to one partition of
// __consumer_offsets, with that partition. mu orders appends with updates of the in-memory
// state, so that the log and the state agree record by record.
type offsetLog struct {
	mu     sync.Mutex
	p      *storage.Partition
	groups map[string]map[topicPartition]offsetValue
	meta   map[string][]byte // group metadata values (key version 2), by group
	// since counts the bytes appended since the start of the latest complete snapshot
	// (snapshot included); snap is the size of that snapshot.
	since     int64
	snap      int64
	snapStart int64 // first offset of the latest snapshot (-1: none since loading)
}

// offsetStore keeps committed offsets in memory and in __consumer_offsets. See the package
// documentation for how the log is kept bounded.
type offsetStore struct {
	store     *storage.Store
	log       *slog.Logger
	threshold int64 // bytes of commits between snapshots (= the topic's segment.bytes)
	now       func() int64
	parts     []*offsetLog

	cfgMu     sync.Mutex // serialises retention.bytes updates
	retention int64
}

// openOffsets opens (creating if needed) __consumer_offsets.
func openOffsets(st *storage.Store, partitions int32, threshold int64, now func() int64, log *slog.Logger) (*offsetStore, error) {
	t := st.Topic(OffsetsTopic)
	if t == nil {
		tc := storage.DefaultTopicConfig()
		tc.CleanupPolicy = "compact"
		tc.SegmentBytes = threshold
		tc.RetentionMs = -1
		tc.RetentionBytes = retentionFor(threshold, 0)
		var err error
		t, err = st.CreateInternalTopic(OffsetsTopic, partitions, tc)
		if err != nil && !errors.Is(err, storage.ErrTopicExists) {
			return nil, fmt.Errorf("create %s: %w", OffsetsTopic, err)
		}
		if t == nil {
			t = st.Topic(OffsetsTopic)
		}
		if t == nil {
			return nil, fmt.Errorf("create %s: topic missing after creation", OffsetsTopic)
		}
	}
	s := &offsetStore{store: st, log: log, threshold: threshold, now: now, retention: t.Config().RetentionBytes}
	for _, p := range t.Partitions() {
		s.parts = append(s.parts, &offsetLog{p: p, groups: make(map[string]map[topicPartition]offsetValue), meta: make(map[string][]byte), snapStart: -1})
	}
	if len(s.parts) == 0 {
		return nil, fmt.Errorf("%s has no partitions", OffsetsTopic)
	}
	return s, nil
}

// retentionFor is the retention.bytes that keeps the latest complete snapshot of a partition
// whose live state is live bytes: see the package documentation.
func retentionFor(threshold, live int64) int64 {
	return 3*threshold + 3*live
}

func (s *offsetStore) partFor(group string) *offsetLog {
	return s.parts[PartitionFor(group, int32(len(s.parts)))]
}

// load rebuilds the in-memory state from the log.
func (s *offsetStore) load() error {
	var maxLive int64
	for _, l := range s.parts {
		if err := l.load(s.log); err != nil {
			return fmt.Errorf("load %s-%d: %w", OffsetsTopic, l.p.Index(), err)
		}
		maxLive = max(maxLive, l.liveBytes())
	}
	return s.ensureRetention(maxLive)
}

func (l *offsetLog) load(log *slog.Logger) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.p.LogStartOffset()
	off := start
	hw := l.p.HighWatermark()
	for off < hw {
		sl, err := l.p.Read(off, 1<<20)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		buf := make([]byte, sl.Len())
		err = sl.ReadAt(buf)
		sl.Release()
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if len(buf) == 0 {
			break
		}
		_, next, err := parseBatches(buf, func(o int64, key, value []byte) error {
			if o < start {
				return nil
			}
			if err := l.apply(key, value); err != nil {
				// Not ours and not Kafka's: keep going, the rest of the log is still good.
				log.Warn("skip undecodable record", "topic", OffsetsTopic, "partition", l.p.Index(), "offset", o, "err", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if next <= off {
			return fmt.Errorf("no progress reading at offset %d", off)
		}
		off = next
	}
	l.since = l.p.Size()
	l.snap = 0
	return nil
}

// apply replays one record of the log.
func (l *offsetLog) apply(key, value []byte) error {
	k, err := decodeOffsetKey(key)
	if errors.Is(err, errSkip) {
		var gk kmsg.GroupMetadataKey
		if gk.ReadFrom(key) == nil && gk.Version == groupKeyVersion {
			if value == nil {
				delete(l.meta, gk.Group)
			} else {
				l.meta[gk.Group] = slices.Clone(value)
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if value == nil {
		l.remove(k.group, topicPartition{k.topic, k.partition})
		return nil
	}
	v, err := decodeOffsetValue(value)
	if err != nil {
		return err
	}
	l.set(k.group, topicPartition{k.topic, k.partition}, v)
	return nil
}

func (l *offsetLog) set(group string, tp topicPartition, v offsetValue) {
	m := l.groups[group]
	if m == nil {
		m = make(map[topicPartition]offsetValue)
		l.groups[group] = m
	}
	m[tp] = v
}

func (l *offsetLog) remove(group string, tp topicPartition) {
	m := l.groups[group]
	delete(m, tp)
	if len(m) == 0 {
		delete(l.groups, group)
	}
}

// liveBytes estimates the size of a snapshot of the live state.
func (l *offsetLog) liveBytes() int64 {
	var n int64
	for g, v := range l.meta {
		n += int64(20 + len(g) + len(v))
	}
	for g, m := range l.groups {
		for tp, v := range m {
			n += int64(40 + 2*len(g) + len(tp.topic) + len(v.metadata))
		}
	}
	return n
}

// write appends the offset records of group (a nil value deletes) and applies them to the
// in-memory state. It returns the offset to Sync up to.
func (s *offsetStore) write(l *offsetLog, group string, keys []topicPartition, values []*offsetValue) (int64, error) {
	recs := make([]kv, len(keys))
	for i, tp := range keys {
		recs[i].key = encodeOffsetKey(offsetKey{group, tp.topic, tp.partition})
		if values[i] != nil {
			recs[i].value = encodeOffsetValue(*values[i])
		}
	}
	return s.append(l, recs, func() {
		for i, tp := range keys {
			if values[i] == nil {
				l.remove(group, tp)
			} else {
				l.set(group, tp, *values[i])
			}
		}
	})
}

// append appends records to l, after writing a snapshot first if enough has been appended
// since the last one, then calls apply (under l.mu) to update the in-memory state. It
// returns the offset to Sync up to.
func (s *offsetStore) append(l *offsetLog, recs []kv, apply func()) (int64, error) {
	batches := buildBatches(recs, s.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since-l.snap > s.threshold {
		if err := s.snapshot(l); err != nil {
			return 0, err
		}
	}
	end := int64(-1)
	for i, b := range batches {
		n := int64(len(b))
		res, err := l.p.Append(b)
		if err != nil {
			return 0, fmt.Errorf("append to %s-%d (batch %d of %d): %w", OffsetsTopic, l.p.Index(), i+1, len(batches), err)
		}
		l.since += n
		end = res.LastOffset + 1
	}
	apply()
	return end, nil
}

// storeGroup appends group's metadata record (key version 2; nil value: tombstone). It does
// not wait for the fsync: a lost record only makes members rejoin after a crash; the next
// commit to the partition, or the store's close, makes it durable.
func (s *offsetStore) storeGroup(group string, value []byte) error {
	l := s.partFor(group)
	key := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	_, err := s.append(l, []kv{{key.AppendTo(nil), value}}, func() {
		if value == nil {
			delete(l.meta, group)
		} else {
			l.meta[group] = value
		}
	})
	return err
}

// groupMetadata returns every stored group metadata value, by group.
func (s *offsetStore) groupMetadata() map[string][]byte {
	out := map[string][]byte{}
	for _, l := range s.parts {
		l.mu.Lock()
		for g, v := range l.meta {
			out[g] = v
		}
		l.mu.Unlock()
	}
	return out
}

// snapshot appends the whole live state of l as new records and fsyncs it; from then on the
// log before the snapshot holds nothing that is still needed, and retention.bytes (kept at
// retentionFor) deletes it. l.mu is held.
func (s *offsetStore) snapshot(l *offsetLog) error {
	groups := make([]string, 0, len(l.groups))
	for g := range l.groups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var recs []kv
	for _, g := range groups {
		for tp, v := range l.groups[g] {
			recs = append(recs, kv{encodeOffsetKey(offsetKey{g, tp.topic, tp.partition}), encodeOffsetValue(v)})
		}
	}
	for g, v := range l.meta {
		key := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: g}
		recs = append(recs, kv{key.AppendTo(nil), v})
	}
	var size, end int64
	start := l.p.HighWatermark()
	for i, b := range buildBatches(recs, s.now()) {
		res, err := l.p.Append(b)
		if err != nil {
			return fmt.Errorf("snapshot %s-%d: %w", OffsetsTopic, l.p.Index(), err)
		}
		if i == 0 {
			start = res.BaseOffset
		}
		size += int64(len(b))
		end = res.LastOffset + 1
	}
	if end > 0 {
		if err := l.p.Sync(end); err != nil {
			return fmt.Errorf("snapshot %s-%d: sync: %w", OffsetsTopic, l.p.Index(), err)
		}
	}
	l.since, l.snap, l.snapStart = size, size, start
	s.log.Debug("wrote offsets snapshot", "partition", l.p.Index(), "bytes", size, "records", len(recs))
	return s.ensureRetention(size)
}

// ensureRetention raises the topic's retention.bytes if a partition's live state has grown
// beyond what the current value protects.
func (s *offsetStore) ensureRetention(live int64) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	need := retentionFor(s.threshold, live)
	t := s.store.Topic(OffsetsTopic)
	if t == nil {
		return fmt.Errorf("%s: %w", OffsetsTopic, storage.ErrUnknownTopic)
	}
	cfg := t.Config()
	if cfg.RetentionBytes >= 0 && cfg.RetentionBytes < need || cfg.RetentionMs >= 0 {
		cfg.RetentionBytes = retentionFor(s.threshold, 2*live)
		cfg.RetentionMs = -1
		if err := s.store.SetTopicConfig(OffsetsTopic, cfg); err != nil {
			return fmt.Errorf("set %s retention.bytes: %w", OffsetsTopic, err)
		}
	}
	s.retention = cfg.RetentionBytes
	return nil
}

// commit durably stores offsets of group: it returns once they are fsynced.
func (s *offsetStore) commit(group string, keys []topicPartition, values []offsetValue) error {
	vs := make([]*offsetValue, len(values))
	for i := range values {
		vs[i] = &values[i]
	}
	l := s.partFor(group)
	end, err := s.write(l, group, keys, vs)
	if err != nil {
		return err
	}
	if err := l.p.Sync(end); err != nil {
		return fmt.Errorf("sync %s-%d: %w", OffsetsTopic, l.p.Index(), err)
	}
	return nil
}

// remove durably deletes offsets of group (tombstones). With keep, only the offsets for
// which keep returns false are deleted (checked under the log's lock, so that a concurrent
// newer commit survives).
func (s *offsetStore) remove(group string, keys []topicPartition, keep func(topicPartition, offsetValue) bool) error {
	l := s.partFor(group)
	if keep != nil {
		l.mu.Lock()
		m := l.groups[group]
		keys = slices.DeleteFunc(slices.Clone(keys), func(tp topicPartition) bool {
			v, ok := m[tp]
			return !ok || keep(tp, v)
		})
		l.mu.Unlock()
	}
	if len(keys) == 0 {
		return nil
	}
	end, err := s.write(l, group, keys, make([]*offsetValue, len(keys)))
	if err != nil {
		return err
	}
	if err := l.p.Sync(end); err != nil {
		return fmt.Errorf("sync %s-%d: %w", OffsetsTopic, l.p.Index(), err)
	}
	return nil
}

// get returns group's committed offset for tp.
func (s *offsetStore) get(group string, tp topicPartition) (offsetValue, bool) {
	l := s.partFor(group)
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.groups[group][tp]
	return v, ok
}

// all returns a copy of group's committed offsets.
func (s *offsetStore) all(group string) map[topicPartition]offsetValue {
	l := s.partFor(group)
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[topicPartition]offsetValue, len(l.groups[group]))
	for tp, v := range l.groups[group] {
		out[tp] = v
	}
	return out
}

// groupIDs lists every group with committed offsets.
func (s *offsetStore) groupIDs() []string {
	var out []string
	for _, l := range s.parts {
		l.mu.Lock()
		for g := range l.groups {
			out = append(out, g)
		}
		l.mu.Unlock()
	}
	return out
}

// has reports whether group has committed offsets.
func (s *offsetStore) has(group string) bool {
	l := s.partFor(group)
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.groups[group]) > 0
}

// hasMeta reports whether group has stored metadata.
func (s *offsetStore) hasMeta(group string) bool {
	l := s.partFor(group)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.meta[group]
	return ok
}
