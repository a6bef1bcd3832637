package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

// Partition is the log of one topic partition: a sequence of segments, the last of
// which takes appends. Appends are serialised by the partition's lock; reads take it
// only to find their bytes.
type Partition struct {
	topic string
	index int32
	dir   string
	log   *slog.Logger
	now   func() time.Time
	cfg   func() TopicConfig // the topic's current config
	cache *fileCache         // open files of sealed segments

	mu      sync.RWMutex
	segs    []*segment // ascending base offsets; the last is active
	next    int64      // log end offset = high watermark (single replica)
	prods   producers
	waitCh  chan struct{} // closed and replaced by the next append, when taken
	waiting bool
	closed  bool

	syncMu  sync.Mutex
	syncCnd *sync.Cond
	syncing bool
	synced  int64 // every offset below is durable
}

// Slice is a range of bytes of one segment file: whole batches as stored. It keeps the
// segment's file open until Release, even if retention deletes the segment or the
// cache of open files evicts it meanwhile.
type Slice struct {
	file *fileRef
	pos  int64
	size int64
}

// Len is the number of bytes in the slice.
func (s Slice) Len() int64 { return s.size }

// File is the segment file, for sendfile. Use it with Pos, never with its own offset.
func (s Slice) File() *os.File {
	if s.file == nil {
		return nil
	}
	return s.file.f
}

// Pos is the position of the slice in File.
func (s Slice) Pos() int64 { return s.pos }

// ReadAt copies the slice's bytes into dst[:Len()].
func (s Slice) ReadAt(dst []byte) error {
	if s.size == 0 {
		return nil
	}
	if int64(len(dst)) < s.size {
		return fmt.Errorf("read slice: buffer of %d bytes for %d", len(dst), s.size)
	}
	if _, err := s.file.f.ReadAt(dst[:s.size], s.pos); err != nil {
		return fmt.Errorf("read %s at %d: %w", s.file.f.Name(), s.pos, err)
	}
	return nil
}

// Release lets the segment go; call it exactly once per Slice from Read.
func (s Slice) Release() {
	if s.file != nil {
		s.file.release()
	}
}

// AppendResult describes an appended (or recognised duplicate) batch.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record
	LastOffset     int64 // offset of the last record
	LogAppendTime  int64 // -1: topics use CreateTime
	LogStartOffset int64
	Duplicate      bool // a retry of a batch already stored; nothing was appended
}

// Topic is the name of the partition's topic.
func (p *Partition) Topic() string { return p.topic }

// Index is the partition number.
func (p *Partition) Index() int32 { return p.index }

// HighWatermark is the log end offset: the offset the next record will get.
func (p *Partition) HighWatermark() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.next
}

// LogStartOffset is the first offset still stored.
func (p *Partition) LogStartOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.segs[0].base
}

// Size is the number of bytes of all segments.
func (p *Partition) Size() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var n int64
	for _, s := range p.segs {
		n += s.size
	}
	return n
}

// Append checks a producer's batch with the produce rules (recordbatch.CheckProduced,
// its frame but not its records), applies the idempotent-producer rules, assigns
// its offsets by rewriting batch in place, and appends it. Once Append returns, readers
// see the batch; it is durable after Sync.
func (p *Partition) Append(batch []byte) (AppendResult, error) {
	cfg := p.cfg()
	h, err := recordbatch.CheckProduced(batch, recordbatch.ProduceRules{MaxBytes: int64(cfg.MaxMessageBytes)})
	if err != nil {
		return AppendResult{}, fmt.Errorf("%s-%d: %w", p.topic, p.index, err)
	}
	return p.appendChecked(batch, h, cfg)
}

// AppendChecked is Append for a batch that the caller has just checked with
// recordbatch.CheckProduced against this partition's max.message.bytes, passing
// the header it returned: the produce rules are not applied again. The
// idempotent-producer rules (sequence numbers, epochs) apply as in Append.
func (p *Partition) AppendChecked(batch []byte, h recordbatch.Header) (AppendResult, error) {
	return p.appendChecked(batch, h, p.cfg())
}

func (p *Partition) appendChecked(batch []byte, h recordbatch.Header, cfg TopicConfig) (AppendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return AppendResult{}, ErrClosed
	}
	res := AppendResult{LogAppendTime: -1, LogStartOffset: p.segs[0].base}
	dup, err := p.prods.check(h)
	if err != nil {
		return res, fmt.Errorf("%s-%d: %w", p.topic, p.index, err)
	}
	if dup != nil {
		res.BaseOffset, res.LastOffset, res.Duplicate = dup.BaseOffset, dup.LastOffset, true
		return res, nil
	}
	active := p.segs[len(p.segs)-1]
	if p.shouldRoll(active, int64(len(batch)), h, cfg) {
		if active, err = p.roll(); err != nil {
			return res, err
		}
	}
	recordbatch.SetBaseOffset(batch, p.next)
	h.BaseOffset = p.next
	if err := active.appendBatch(batch, h, cfg.IndexIntervalBytes); err != nil {
		return res, err
	}
	p.next = h.LastOffset() + 1
	p.prods.update(h, p.now().UnixMilli())
	if p.waiting {
		close(p.waitCh)
		p.waitCh, p.waiting = make(chan struct{}), false
	}
	res.BaseOffset, res.LastOffset = h.BaseOffset, h.LastOffset()
	return res, nil
}

func (p *Partition) shouldRoll(s *segment, n int64, h recordbatch.Header, cfg TopicConfig) bool {
	if s.size == 0 {
		return false
	}
	return s.size+n > cfg.SegmentBytes ||
		p.now().Sub(s.created) > time.Duration(cfg.SegmentMs)*time.Millisecond ||
		s.size+n > math.MaxInt32 || // positions are 4 bytes in the index
		p.next+int64(h.LastOffsetDelta)-s.base > math.MaxInt32 // so are relative offsets
}

// roll seals the active segment and starts a new one at the log end offset. It writes
// a producer-state snapshot for the new base, so that a restart replays at most the
// active segment.
func (p *Partition) roll() (*segment, error) {
	old := p.segs[len(p.segs)-1]
	if old.maxTS > old.lastIndexTS { // a final time-index entry, so the sealed segment knows its max timestamp
		old.timeIndex = append(old.timeIndex, make([]byte, timeEntrySize)...)
		e := old.timeIndex[len(old.timeIndex)-timeEntrySize:]
		putTimeEntry(e, old.maxTS, uint32(old.next-1-old.base))
	}
	if err := old.seal(); err != nil {
		return nil, fmt.Errorf("roll %s-%d: %w", p.topic, p.index, err)
	}
	p.markSynced(old.next)
	p.prods.expire(p.now().UnixMilli())
	if err := writeSnapshot(p.dir, p.next, p.prods); err != nil {
		p.log.Warn("producer snapshot failed; a restart will replay more of the log", "partition", p.dir, "err", err)
	}
	s, err := createSegment(p.dir, p.next, p.now(), p.cache)
	if err != nil {
		return nil, fmt.Errorf("roll %s-%d: %w", p.topic, p.index, err)
	}
	if err := atomicfile.SyncDir(p.dir); err != nil {
		return nil, fmt.Errorf("roll %s-%d: fsync directory: %w", p.topic, p.index, err)
	}
	p.segs = append(p.segs, s)
	return s, nil
}

func (p *Partition) markSynced(off int64) {
	p.syncMu.Lock()
	if off > p.synced {
		p.synced = off
	}
	p.syncMu.Unlock()
}

// Sync makes every record below offset durable. Concurrent callers share fsyncs: one
// caller syncs while the others wait, and a sync covers everything appended before it
// started, so a burst of acks=all producers costs one or two fsyncs, not one each.
func (p *Partition) Sync(offset int64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	for p.synced < offset {
		if p.syncing {
			p.syncCnd.Wait()
			continue
		}
		p.syncing = true
		p.syncMu.Unlock()

		p.mu.RLock()
		target, active, closed := p.next, p.segs[len(p.segs)-1], p.closed
		var file *fileRef
		if !closed {
			file = active.file // the active segment's file is always open
			file.acquire()
		}
		p.mu.RUnlock()
		var err error
		if closed {
			err = ErrClosed
		} else {
			if err = file.f.Sync(); err != nil {
				err = fmt.Errorf("fsync %s: %w", active.logName(), err)
			}
			file.release()
		}

		p.syncMu.Lock()
		p.syncing = false
		if err == nil && target > p.synced {
			p.synced = target
		}
		p.syncCnd.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}

// Read returns whole batches starting with the one that holds offset: at most maxBytes,
// but at least one batch, and never past the end of one segment.
func (p *Partition) Read(offset int64, maxBytes int32) (Slice, error) {
	p.mu.RLock()
	start, end := p.segs[0].base, p.next
	if offset < start || offset > end {
		p.mu.RUnlock()
		return Slice{}, fmt.Errorf("%w: offset %d, %s-%d holds %d to %d", ErrOffsetOutOfRange, offset, p.topic, p.index, start, end)
	}
	if offset == end {
		p.mu.RUnlock()
		return Slice{}, nil
	}
	i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset }) - 1
	seg := p.segs[i]
	pos, err := seg.lookup(offset)
	limit := seg.size
	var file *fileRef
	if err == nil {
		file, err = seg.acquire()
	}
	p.mu.RUnlock()
	if err != nil {
		return Slice{}, fmt.Errorf("%s-%d: %w", p.topic, p.index, err)
	}
	s, err := scanRange(file, pos, limit, offset, int64(maxBytes))
	if err != nil || s.size == 0 {
		file.release()
		if err == nil && i+1 < len(p.segs) {
			// offset lies in a gap at the end of this segment; it cannot: segments are contiguous.
			err = fmt.Errorf("%s-%d: offset %d not found in segment %d", p.topic, p.index, offset, seg.base)
		}
		return Slice{}, err
	}
	return s, nil
}

// scanRange walks batch headers from pos to find the batch holding offset, then takes
// whole batches up to maxBytes (at least one).
func scanRange(file *fileRef, pos, limit, offset, maxBytes int64) (Slice, error) {
	var buf [recordbatch.HeaderSize]byte
	for pos < limit {
		h, err := readHeader(file.f, pos, limit, &buf)
		if err != nil {
			return Slice{}, err
		}
		if h.LastOffset() >= offset {
			break
		}
		pos += h.Length
	}
	s := Slice{file: file, pos: pos}
	for p := pos; p < limit; {
		h, err := readHeader(file.f, p, limit, &buf)
		if err != nil {
			return Slice{}, err
		}
		if s.size > 0 && s.size+h.Length > maxBytes {
			break
		}
		s.size += h.Length
		p += h.Length
	}
	return s, nil
}

// Wait returns a channel closed once the high watermark exceeds offset, or when the
// partition is closed or deleted.
func (p *Partition) Wait(offset int64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next > offset || p.closed {
		return closedChan
	}
	p.waiting = true
	return p.waitCh
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// OffsetForTimestamp returns the base offset of the first batch whose max timestamp is
// at least ts, with that timestamp. A batch is the unit of storage, so the offset may
// be of an earlier record of the same batch: consumers starting there see a few records
// before ts, never miss one after it.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	p.mu.RLock()
	var seg *segment
	for _, s := range p.segs {
		if s.maxTS >= ts {
			seg = s
			break
		}
	}
	if seg == nil {
		p.mu.RUnlock()
		return 0, 0, false, nil
	}
	pos, err := seg.timeLookup(ts)
	limit := seg.size
	var file *fileRef
	if err == nil {
		file, err = seg.acquire()
	}
	p.mu.RUnlock()
	if err != nil {
		return 0, 0, false, err
	}
	defer file.release()
	var buf [recordbatch.HeaderSize]byte
	for pos < limit {
		h, err := readHeader(file.f, pos, limit, &buf)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp >= ts {
			return h.BaseOffset, h.MaxTimestamp, true, nil
		}
		pos += h.Length
	}
	return 0, 0, false, nil
}

// applyRetention deletes the oldest sealed segments that are older than retention.ms
// or beyond retention.bytes. The active segment is never deleted.
func (p *Partition) applyRetention(cfg TopicConfig, now time.Time) {
	p.mu.Lock()
	var total int64
	for _, s := range p.segs {
		total += s.size
	}
	n := 0
	for n < len(p.segs)-1 {
		s := p.segs[n]
		ts := s.maxTS
		if ts < 0 {
			if fi, err := os.Stat(s.logName()); err == nil {
				ts = fi.ModTime().UnixMilli()
			}
		}
		byTime := cfg.RetentionMs >= 0 && now.UnixMilli()-ts > cfg.RetentionMs
		bySize := cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size
		n++
	}
	gone := append([]*segment(nil), p.segs[:n]...)
	p.segs = p.segs[n:]
	p.mu.Unlock()
	for _, s := range gone {
		p.log.Info("retention deleted segment", "partition", p.dir, "base_offset", s.base, "bytes", s.size)
		s.letGo()
		removeSegmentFiles(s.dir, s.base)
	}
}

func removeSegmentFiles(dir string, base int64) {
	for _, ext := range []string{".log", ".index", ".timeindex", ".snapshot"} {
		os.Remove(segmentPath(dir, base, ext))
	}
}

// close flushes the partition for a clean shutdown: the active segment's indexes are
// written, everything is fsynced, and a producer snapshot is taken.
func (p *Partition) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.waitCh)
	active := p.segs[len(p.segs)-1]
	err := active.writeIndexes()
	if serr := active.file.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("fsync %s: %w", active.logName(), serr)
	}
	if err == nil {
		err = writeSnapshot(p.dir, p.next, p.prods)
	}
	for _, s := range p.segs {
		s.letGo()
	}
	return err
}

// remove closes the partition without flushing and deletes its directory.
func (p *Partition) remove() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.waitCh)
		for _, s := range p.segs {
			s.letGo()
		}
	}
	p.mu.Unlock()
	return os.RemoveAll(p.dir)
}
