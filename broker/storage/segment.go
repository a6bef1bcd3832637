package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/logpipe/logpipe/internal/atomicfile"
)

const (
	offsetEntrySize = 8  // 4-byte relative offset, 4-byte position
	timeEntrySize   = 12 // 8-byte timestamp, 4-byte relative offset
)

// segment is one log file and its two sparse indexes. The active (last) segment of a
// partition takes appends and keeps its index entries in memory until it is sealed;
// a sealed segment is immutable and its index files are searched on disk, so memory
// does not grow with the amount stored.
//
// The active segment keeps its log file open (file); a sealed one opens it on demand
// through the store's fileCache, so the number of open files does not grow with the
// number of segments.
//
// Bytes below size never change, so readers may pread them without the partition lock.
// cached, elem and dropped are guarded by the cache's lock; all other fields by the
// partition's lock.
type segment struct {
	base    int64 // offset of the first batch; also the file name
	dir     string
	cache   *fileCache
	file    *fileRef // the open log file of the active segment; nil once sealed
	size    int64    // bytes of whole batches in log
	next    int64    // one past the last offset stored
	maxTS   int64    // largest batch max timestamp, -1 when none
	created time.Time

	sealed      bool
	index       []byte // offset-index entries of the active segment
	timeIndex   []byte // time-index entries of the active segment
	sinceIndex  int64  // bytes appended since the last index entry
	lastIndexTS int64  // timestamp of the last time-index entry

	cached  *fileRef      // the sealed segment's open file in the cache, or nil
	elem    *list.Element // its place in the cache's LRU list
	dropped bool          // deleted or closed: never cached again
}

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// createSegment creates an empty active segment with base offset base.
func createSegment(dir string, base int64, now time.Time, cache *fileCache) (*segment, error) {
	f, err := os.OpenFile(segmentPath(dir, base, ".log"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	return &segment{base: base, dir: dir, cache: cache, file: newFileRef(f, 1), next: base, maxTS: -1, lastIndexTS: -1, created: now}, nil
}

// logName is the path of the segment's log file, for messages.
func (s *segment) logName() string { return segmentPath(s.dir, s.base, ".log") }

// acquire returns the segment's open log file with a reference for the caller, who
// must release it. A sealed segment's file is opened through the cache if needed.
// The caller holds the partition's lock (read or write).
func (s *segment) acquire() (*fileRef, error) {
	if s.file != nil {
		s.file.acquire()
		return s.file, nil
	}
	return s.cache.open(s)
}

// letGo drops the partition's hold on the segment's file: the active segment's file
// reference, or a sealed segment's place in the cache. Readers holding the file keep
// it open until they release it.
func (s *segment) letGo() {
	if s.file != nil {
		s.file.release()
		s.file = nil
	}
	s.cache.drop(s)
}

// appendBatch writes a batch whose offsets are already assigned. h is its header.
func (s *segment) appendBatch(b []byte, h recordbatch.Header, interval int32) error {
	pos := s.size
	if _, err := s.file.f.WriteAt(b, pos); err != nil {
		// Cut anything partially written so the file ends with a whole batch.
		s.file.f.Truncate(pos)
		return fmt.Errorf("append to %s: %w", s.logName(), err)
	}
	s.size += int64(len(b))
	s.indexBatch(h, pos, interval)
	return nil
}

// indexBatch records a batch stored at pos in the in-memory indexes: an entry once
// more than interval bytes were appended since the last one, keyed by the batch's last
// offset and pointing at its start, as Kafka does.
func (s *segment) indexBatch(h recordbatch.Header, pos int64, interval int32) {
	if h.MaxTimestamp > s.maxTS {
		s.maxTS = h.MaxTimestamp
	}
	s.next = h.LastOffset() + 1
	if s.sinceIndex > int64(interval) {
		rel := uint32(h.LastOffset() - s.base)
		s.index = binary.BigEndian.AppendUint32(s.index, rel)
		s.index = binary.BigEndian.AppendUint32(s.index, uint32(pos))
		if s.maxTS > s.lastIndexTS {
			s.timeIndex = binary.BigEndian.AppendUint64(s.timeIndex, uint64(s.maxTS))
			s.timeIndex = binary.BigEndian.AppendUint32(s.timeIndex, rel)
			s.lastIndexTS = s.maxTS
		}
		s.sinceIndex = 0
	}
	s.sinceIndex += h.Length
}

// seal writes the in-memory indexes to their files and fsyncs the segment, which then
// takes no more appends. Its open file goes to the cache, which closes it when other
// segments are used more recently.
func (s *segment) seal() error {
	if s.sealed {
		return nil
	}
	if err := s.writeIndexes(); err != nil {
		return err
	}
	if err := s.file.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.logName(), err)
	}
	s.sealed, s.index, s.timeIndex = true, nil, nil
	s.cache.adopt(s, s.file)
	s.file = nil
	return nil
}

// writeIndexes writes the in-memory index entries to the .index and .timeindex files.
func (s *segment) writeIndexes() error {
	for _, f := range []struct {
		ext  string
		data []byte
	}{{".index", s.index}, {".timeindex", s.timeIndex}} {
		if err := atomicfile.Write(segmentPath(s.dir, s.base, f.ext), f.data); err != nil {
			return err
		}
	}
	return nil
}

// lookup returns the position of a batch at or before the one holding offset.
func (s *segment) lookup(offset int64) (int64, error) {
	rel := uint32(offset - s.base)
	entry := func(data []byte, i int) (uint32, uint32) {
		e := data[i*offsetEntrySize:]
		return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
	}
	if !s.sealed {
		n := len(s.index) / offsetEntrySize
		i := sort.Search(n, func(i int) bool { r, _ := entry(s.index, i); return r > rel })
		if i == 0 {
			return 0, nil
		}
		_, pos := entry(s.index, i-1)
		return int64(pos), nil
	}
	pos, _, err := searchIndexFile(segmentPath(s.dir, s.base, ".index"), offsetEntrySize, func(e []byte) bool {
		return binary.BigEndian.Uint32(e) > rel
	}, func(e []byte) int64 { return int64(binary.BigEndian.Uint32(e[4:])) })
	return pos, err
}

// timeLookup returns a position from which scanning finds the first batch whose max
// timestamp is >= ts: the position of the offset after the last time-index entry whose
// timestamp is below ts.
func (s *segment) timeLookup(ts int64) (int64, error) {
	var rel int64 = -1
	if !s.sealed {
		n := len(s.timeIndex) / timeEntrySize
		i := sort.Search(n, func(i int) bool {
			return int64(binary.BigEndian.Uint64(s.timeIndex[i*timeEntrySize:])) >= ts
		})
		if i > 0 {
			rel = int64(binary.BigEndian.Uint32(s.timeIndex[(i-1)*timeEntrySize+8:]))
		}
	} else {
		r, found, err := searchIndexFile(segmentPath(s.dir, s.base, ".timeindex"), timeEntrySize, func(e []byte) bool {
			return int64(binary.BigEndian.Uint64(e)) >= ts
		}, func(e []byte) int64 { return int64(binary.BigEndian.Uint32(e[8:])) })
		if err != nil {
			return 0, err
		}
		if found {
			rel = r
		}
	}
	if rel < 0 {
		return 0, nil
	}
	return s.lookup(s.base + rel + 1)
}

// searchIndexFile binary-searches a sorted index file of fixed-size entries with pread,
// for the last entry before the first one where after is true, and returns value of it;
// found is false when there is none.
func searchIndexFile(path string, size int, after func([]byte) bool, value func([]byte) int64) (v int64, found bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("stat index: %w", err)
	}
	n := int(fi.Size()) / size
	buf := make([]byte, size)
	var readErr error
	read := func(i int) []byte {
		if _, err := f.ReadAt(buf, int64(i*size)); err != nil && readErr == nil {
			readErr = fmt.Errorf("read %s: %w", path, err)
		}
		return buf
	}
	i := sort.Search(n, func(i int) bool { return after(read(i)) })
	if readErr != nil {
		return 0, false, readErr
	}
	if i == 0 {
		return 0, false, nil
	}
	v = value(read(i - 1))
	return v, readErr == nil, readErr
}

// readHeader reads the header of the batch at pos. It returns io.EOF when fewer than a
// header's bytes remain before limit.
func readHeader(f *os.File, pos, limit int64, buf *[recordbatch.HeaderSize]byte) (recordbatch.Header, error) {
	if limit-pos < recordbatch.HeaderSize {
		return recordbatch.Header{}, io.EOF
	}
	if _, err := f.ReadAt(buf[:], pos); err != nil {
		if errors.Is(err, io.EOF) {
			return recordbatch.Header{}, io.ErrUnexpectedEOF
		}
		return recordbatch.Header{}, fmt.Errorf("read batch header at %d of %s: %w", pos, f.Name(), err)
	}
	return recordbatch.ParseHeader(buf[:]), nil
}
