package storage

import (
	"container/list"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// DefaultMaxOpenSegments is how many sealed segments keep their log file open at
// most, unless Options.MaxOpenSegments says otherwise. It is further capped at a
// quarter of the process's descriptor limit (RLIMIT_NOFILE), so that connections,
// active segments and index look-ups always find descriptors.
const DefaultMaxOpenSegments = 1000

// minOpenSegments is the smallest cache the store runs with.
const minOpenSegments = 4

// fileRef is an open segment log file shared by its segment (the active segment's
// partition, or the cache for a sealed one) and by the readers that use it. The
// file is closed when the last reference is released, so a file evicted from the
// cache or deleted by retention stays readable by a Slice that still holds it.
type fileRef struct {
	f    *os.File
	refs atomic.Int32
}

func newFileRef(f *os.File, refs int32) *fileRef {
	r := &fileRef{f: f}
	r.refs.Store(refs)
	return r
}

func (r *fileRef) acquire() { r.refs.Add(1) }

// release drops one reference; the last one closes the file.
func (r *fileRef) release() {
	if r.refs.Add(-1) == 0 {
		r.f.Close()
	}
}

// fileCache bounds the log files of sealed segments that are open at once: a sealed
// segment opens its file on demand, and the least recently used one is closed
// (once its readers release it) when more than max are open.
type fileCache struct {
	max int

	mu  sync.Mutex
	lru list.List // of *segment, most recently used first; each has cached != nil

	opens     atomic.Int64 // files opened on demand
	evictions atomic.Int64 // files closed because the cache was full
}

func newFileCache(n int) *fileCache {
	if n <= 0 {
		n = DefaultMaxOpenSegments
		if l := nofileLimit() / 4; l > 0 && l < n {
			n = l
		}
	}
	c := &fileCache{max: max(n, minOpenSegments)}
	c.lru.Init()
	return c
}

// nofileLimit is the soft RLIMIT_NOFILE, 0 when unknown.
func nofileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

// open returns the log file of the sealed segment s with one reference for the
// caller, opening it if it is not cached.
func (c *fileCache) open(s *segment) (*fileRef, error) {
	c.mu.Lock()
	if r := s.cached; r != nil {
		c.lru.MoveToFront(s.elem)
		r.acquire()
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()

	f, err := os.Open(segmentPath(s.dir, s.base, ".log"))
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	c.opens.Add(1)
	r := newFileRef(f, 2) // the cache's and the caller's

	c.mu.Lock()
	if have := s.cached; have != nil { // another reader opened it meanwhile
		c.lru.MoveToFront(s.elem)
		have.acquire()
		c.mu.Unlock()
		f.Close()
		return have, nil
	}
	if s.dropped {
		c.mu.Unlock()
		r.refs.Store(1)
		return r, nil
	}
	evicted := c.insertLocked(s, r)
	c.mu.Unlock()
	for _, e := range evicted {
		e.release()
	}
	return r, nil
}

// adopt takes over the open file of a segment that was just sealed: the partition's
// reference becomes the cache's.
func (c *fileCache) adopt(s *segment, r *fileRef) {
	c.mu.Lock()
	if s.cached != nil || s.dropped {
		c.mu.Unlock()
		r.release()
		return
	}
	evicted := c.insertLocked(s, r)
	c.mu.Unlock()
	for _, e := range evicted {
		e.release()
	}
}

// insertLocked caches r as s's file and returns the files evicted to make room,
// for the caller to release outside the lock.
func (c *fileCache) insertLocked(s *segment, r *fileRef) []*fileRef {
	s.cached, s.elem = r, c.lru.PushFront(s)
	var evicted []*fileRef
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*segment)
		evicted = append(evicted, old.cached)
		old.cached, old.elem = nil, nil
		c.evictions.Add(1)
	}
	return evicted
}

// drop forgets a segment that is deleted or whose partition is closed: its cached
// file, if any, is released, and it is never cached again.
func (c *fileCache) drop(s *segment) {
	c.mu.Lock()
	s.dropped = true
	r := s.cached
	if r != nil {
		c.lru.Remove(s.elem)
		s.cached, s.elem = nil, nil
	}
	c.mu.Unlock()
	if r != nil {
		r.release()
	}
}

// cachedCount is the number of sealed segments whose file is open in the cache.
func (c *fileCache) cachedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
