package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

// openPartition opens the partition in dir, creating it if needed. After an unclean
// shutdown (clean is false) every batch of the active segment is validated and the log
// is cut at the first invalid byte; segments before it were fsynced when they were
// rolled. Index files that are missing or damaged are rebuilt from the log either way.
func openPartition(dir, topic string, index int32, cfg func() TopicConfig, clean bool, cache *fileCache, log *slog.Logger, now func() time.Time) (*Partition, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create partition directory: %w", err)
	}
	p := &Partition{
		topic: topic, index: index, dir: dir, log: log, now: now, cfg: cfg, cache: cache,
		waitCh: make(chan struct{}),
	}
	p.syncCnd = sync.NewCond(&p.syncMu)
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	for _, t := range tmps {
		os.Remove(t)
	}
	bases, err := segmentBases(dir)
	if err != nil {
		return nil, err
	}
	interval := cfg().IndexIntervalBytes
	// Sealed segments whose indexes are sound are not opened at all (their files are
	// opened on demand, through the cache); the others are opened to be scanned, then
	// sealed into the cache, which keeps a bounded number of them open.
	for i, base := range bases {
		active := i == len(bases)-1
		path := segmentPath(dir, base, ".log")
		fi, err := os.Stat(path)
		if err != nil {
			p.releaseAll()
			return nil, fmt.Errorf("stat segment: %w", err)
		}
		s := &segment{base: base, dir: dir, cache: cache, size: fi.Size(), next: base, maxTS: -1, lastIndexTS: -1, created: now()}
		if !active && indexesValid(s) {
			p.segs = append(p.segs, s)
			s.sealed = true
			s.next = bases[i+1]
			s.maxTS = lastTimeIndexTS(s)
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			p.releaseAll()
			return nil, fmt.Errorf("open segment: %w", err)
		}
		s.file = newFileRef(f, 1)
		p.segs = append(p.segs, s)
		// Rebuild the indexes (and, where the log may be torn, validate it).
		cut, err := scanSegment(s, !clean || !active, interval)
		if err != nil {
			p.releaseAll()
			return nil, fmt.Errorf("recover %s: %w", path, err)
		}
		if cut {
			log.Warn("truncated log at the first invalid batch", "segment", path, "valid_bytes", s.size, "file_bytes", fi.Size())
			if !active {
				// Everything after corruption in a sealed segment is unusable.
				for _, later := range bases[i+1:] {
					log.Warn("deleting segment after corruption", "partition", dir, "base_offset", later)
					removeSegmentFiles(dir, later)
				}
				bases = bases[:i+1]
				active = true
			}
		}
		if !active {
			if s.next != bases[i+1] {
				p.releaseAll()
				return nil, fmt.Errorf("recover %s: ends at offset %d but the next segment starts at %d", path, s.next, bases[i+1])
			}
			if s.maxTS > s.lastIndexTS {
				s.timeIndex = append(s.timeIndex, make([]byte, timeEntrySize)...)
				putTimeEntry(s.timeIndex[len(s.timeIndex)-timeEntrySize:], s.maxTS, uint32(s.next-1-s.base))
			}
			if err := s.seal(); err != nil {
				p.releaseAll()
				return nil, err
			}
		}
		if active {
			break
		}
	}
	if len(p.segs) == 0 {
		s, err := createSegment(dir, 0, now(), cache)
		if err != nil {
			return nil, err
		}
		p.segs = append(p.segs, s)
		if err := atomicfile.SyncDir(dir); err != nil {
			s.letGo()
			return nil, fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	p.next = p.segs[len(p.segs)-1].next
	p.synced = p.next // what survived the restart is on disk
	if err := p.loadProducers(); err != nil {
		p.releaseAll()
		return nil, err
	}
	return p, nil
}

func (p *Partition) releaseAll() {
	for _, s := range p.segs {
		s.letGo()
	}
	p.segs = nil
}

// segmentBases lists the base offsets of the .log files in dir, ascending.
func segmentBases(dir string) ([]int64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, n := range names {
		b, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(n), ".log"), 10, 64)
		if err != nil || b < 0 {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// scanSegment walks every batch of s from the start, rebuilding the in-memory indexes
// and s.next. With validate, every batch is read whole and checked (length, magic,
// CRC-32C, record count) and offsets must be contiguous; the file is truncated at the
// first batch that fails, and cut reports that.
func scanSegment(s *segment, validate bool, interval int32) (cut bool, err error) {
	s.index, s.timeIndex, s.sinceIndex, s.lastIndexTS, s.maxTS, s.next = nil, nil, 0, -1, -1, s.base
	var hdr [recordbatch.HeaderSize]byte
	var buf []byte
	var pos int64
	for pos < s.size {
		h, err := readHeader(s.file.f, pos, s.size, &hdr)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return false, err
		}
		if h.Length < recordbatch.HeaderSize || pos+h.Length > s.size || h.BaseOffset != s.next {
			break
		}
		if validate {
			if int64(cap(buf)) < h.Length {
				buf = make([]byte, h.Length)
			}
			buf = buf[:h.Length]
			if _, err := s.file.f.ReadAt(buf, pos); err != nil {
				return false, fmt.Errorf("read batch at %d: %w", pos, err)
			}
			if _, err := recordbatch.CheckFrame(buf); err != nil {
				break
			}
		} else if hdr[recordbatch.OffMagic] != 2 {
			break
		}
		s.indexBatch(h, pos, interval)
		pos += h.Length
	}
	if pos < s.size {
		if err := s.file.f.Truncate(pos); err != nil {
			return false, fmt.Errorf("truncate to %d: %w", pos, err)
		}
		if err := s.file.f.Sync(); err != nil {
			return false, fmt.Errorf("fsync after truncate: %w", err)
		}
		s.size = pos
		return true, nil
	}
	return false, nil
}

// indexesValid reports whether a sealed segment's index files exist and are sane:
// whole entries, strictly increasing offsets and positions inside the log, and
// non-decreasing timestamps.
func indexesValid(s *segment) bool {
	idx, err := os.ReadFile(segmentPath(s.dir, s.base, ".index"))
	if err != nil || len(idx)%offsetEntrySize != 0 {
		return false
	}
	prevRel, prevPos := int64(-1), int64(-1)
	for i := 0; i < len(idx); i += offsetEntrySize {
		rel, pos := int64(binary.BigEndian.Uint32(idx[i:])), int64(binary.BigEndian.Uint32(idx[i+4:]))
		if rel <= prevRel || pos <= prevPos || pos >= s.size {
			return false
		}
		prevRel, prevPos = rel, pos
	}
	tidx, err := os.ReadFile(segmentPath(s.dir, s.base, ".timeindex"))
	if err != nil || len(tidx)%timeEntrySize != 0 {
		return false
	}
	prevTS := int64(-1 << 63)
	for i := 0; i < len(tidx); i += timeEntrySize {
		ts := int64(binary.BigEndian.Uint64(tidx[i:]))
		if ts < prevTS {
			return false
		}
		prevTS = ts
	}
	return true
}

// lastTimeIndexTS is the largest timestamp of a sealed segment: its last time-index
// entry, written when it was sealed. -1 when it has none.
func lastTimeIndexTS(s *segment) int64 {
	f, err := os.Open(segmentPath(s.dir, s.base, ".timeindex"))
	if err != nil {
		return -1
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < timeEntrySize {
		return -1
	}
	var e [timeEntrySize]byte
	if _, err := f.ReadAt(e[:], fi.Size()-timeEntrySize); err != nil {
		return -1
	}
	return int64(binary.BigEndian.Uint64(e[:]))
}

func putTimeEntry(e []byte, ts int64, rel uint32) {
	binary.BigEndian.PutUint64(e, uint64(ts))
	binary.BigEndian.PutUint32(e[8:], rel)
}

// loadProducers rebuilds the idempotent-producer state: the newest snapshot, then the
// headers of every batch after it.
func (p *Partition) loadProducers() error {
	ps, from := loadSnapshot(p.dir, p.next)
	if from < p.segs[0].base {
		ps, from = producers{}, p.segs[0].base // the snapshot predates retention; replay what is left
	}
	for _, s := range p.segs {
		if s.next <= from {
			continue
		}
		if err := replayProducers(s, from, ps); err != nil {
			return fmt.Errorf("replay producer state of %s: %w", p.dir, err)
		}
	}
	ps.expire(p.now().UnixMilli())
	p.prods = ps
	return nil
}

// replayProducers applies the headers of the batches of s from offset from on to ps.
func replayProducers(s *segment, from int64, ps producers) error {
	pos := int64(0)
	if from > s.base {
		var err error
		if pos, err = s.lookup(from); err != nil {
			return err
		}
	}
	file, err := s.acquire()
	if err != nil {
		return err
	}
	defer file.release()
	var hdr [recordbatch.HeaderSize]byte
	for pos < s.size {
		h, err := readHeader(file.f, pos, s.size, &hdr)
		if err != nil {
			return err
		}
		if h.BaseOffset >= from {
			ps.update(h, h.MaxTimestamp)
		}
		pos += h.Length
	}
	return nil
}
