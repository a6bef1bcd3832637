// Package checkpoint owns how far each file has been acknowledged by Kafka.
//
// The agent's data path runs one way: a harvester reads a line, tracks it with its
// file's checkpoint (File.Track), and hands it to the producer together with the
// File, which is the producer's acknowledgement callback (ship.RunAcker). Kafka's
// acknowledgements come back from the producer's goroutines, not necessarily in file
// order (a file without a record key spreads over partitions). The File turns them
// into the offset below which every line is acknowledged, and moves the file's
// registry entry there: a restart resumes from it, so a line is never skipped, and
// only the lines sent but not acknowledged at a kill are sent again.
//
// A File also holds its registry entry: from Begin until the harvester let the file
// go (Close) and every line sent is acknowledged, the registry does not forget it.
package checkpoint

import (
	"sync"

	"github.com/logpipe/logpipe/logagent/registry"
)

// Checkpointer makes a File for each file incarnation a harvester reads.
type Checkpointer struct {
	reg   *registry.Registry
	acked func(path string, lines int, bytes int64)
}

// New returns a Checkpointer that records acknowledged offsets in reg. acked, if not
// nil, is told of every run of acknowledged lines of a file: how many lines and by
// how many bytes its offset advanced (for metrics). It is called from the producer's
// goroutines and must not block.
func New(reg *registry.Registry, acked func(path string, lines int, bytes int64)) *Checkpointer {
	return &Checkpointer{reg: reg, acked: acked}
}

// Begin starts tracking incarnation gen of the file whose registry key is key, read
// from offset on (every byte below is acknowledged). The registry holds the file's
// entry until the File is closed and all its lines are acknowledged.
func (c *Checkpointer) Begin(path, key string, gen int, offset int64) *File {
	c.reg.Acquire(key)
	return &File{c: c, path: path, key: key, gen: gen, acked: offset}
}

// File is the acknowledgement state of one file incarnation: the lines sent, in file
// order, and the offset below which all are acknowledged. Its methods may be called
// from any goroutine.
type File struct {
	c    *Checkpointer
	path string
	key  string
	gen  int

	mu    sync.Mutex
	acked int64 // every byte below is acknowledged
	// pending[head:] are the lines sent and not yet passed by acked, in file order;
	// pending[head] has sequence number first. The slice is reused, not reallocated,
	// while lines flow.
	pending  []slot
	head     int
	first    uint64
	closed   bool // the harvester let the file go
	released bool // the registry was told, once closed and fully acknowledged
}

// slot is a line sent: where it ends, and whether it is acknowledged.
type slot struct {
	next int64
	done bool
}

// Track registers a line about to be sent that ends at offset next (where reading
// resumes after it), and returns its sequence number: the token to acknowledge it
// with.
func (f *File) Track(next int64) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == cap(f.pending) && f.head > 0 && f.head >= len(f.pending)/2 {
		// Full, and at least half of it passed: move the lines still pending to the
		// front rather than grow.
		n := copy(f.pending, f.pending[f.head:])
		f.pending, f.head = f.pending[:n], 0
	}
	f.pending = append(f.pending, slot{next: next})
	return f.first + uint64(len(f.pending)-1-f.head)
}

// Ack marks line seq acknowledged.
func (f *File) Ack(seq uint64) { f.AckRun([]uint64{seq}) }

// AckRun marks lines acknowledged; the registry offset then moves once, over every
// line acknowledged without a gap.
func (f *File) AckRun(seqs []uint64) {
	f.mu.Lock()
	before := f.acked
	n := uint64(len(f.pending) - f.head)
	for _, seq := range seqs {
		if seq >= f.first && seq-f.first < n {
			f.pending[f.head+int(seq-f.first)].done = true
		}
	}
	for f.head < len(f.pending) && f.pending[f.head].done {
		f.acked = f.pending[f.head].next
		f.head++
		f.first++
	}
	if f.head == len(f.pending) {
		f.pending, f.head = f.pending[:0], 0
		if cap(f.pending) > 4096 {
			f.pending = nil // a burst is over: let its backing array go
		}
	}
	after := f.acked
	if after != before {
		f.c.reg.SetOffset(f.key, f.gen, after)
	}
	f.maybeRelease()
	f.mu.Unlock()
	if f.c.acked != nil {
		f.c.acked(f.path, len(seqs), after-before)
	}
}

// Close notes that the harvester let the file go: once every line sent is
// acknowledged, the registry may forget the file if it is gone.
func (f *File) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.maybeRelease()
}

// maybeRelease releases the registry entry once closed and fully acknowledged.
// f.mu is held.
func (f *File) maybeRelease() {
	if f.closed && !f.released && f.head == len(f.pending) {
		f.released = true
		f.c.reg.Release(f.key)
	}
}

// Offset is the offset below which every line is acknowledged.
func (f *File) Offset() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acked
}

// Outstanding is the number of lines sent and not yet acknowledged (counting those
// acknowledged behind one that is not).
func (f *File) Outstanding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) - f.head
}
