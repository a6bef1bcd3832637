package tailer

import "sync"

// ackWindow turns acknowledgements that may arrive out of order into the offset
// below which every line is acknowledged.
type ackWindow struct {
	mu      sync.Mutex
	acked   int64 // every byte below is acknowledged
	first   uint64
	pending []ackSlot // lines sent, in file order, from sequence first
}

type ackSlot struct {
	next int64
	done bool
}

// add registers a sent line ending at next and returns its sequence number.
func (w *ackWindow) add(next int64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, ackSlot{next: next})
	return w.first + uint64(len(w.pending)-1)
}

// done marks line seq acknowledged and reports the acknowledged offset before and
// after, and whether it moved.
func (w *ackWindow) done(seq uint64) (before, after int64, moved bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	before = w.acked
	w.mark(seq)
	moved = w.advance()
	return before, w.acked, moved
}

// doneRun is done of several lines, under one lock.
func (w *ackWindow) doneRun(seqs []uint64) (before, after int64, moved bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	before = w.acked
	for _, seq := range seqs {
		w.mark(seq)
	}
	moved = w.advance()
	return before, w.acked, moved
}

func (w *ackWindow) mark(seq uint64) {
	if seq >= w.first && seq-w.first < uint64(len(w.pending)) {
		w.pending[seq-w.first].done = true
	}
}

// advance moves acked over the acknowledged lines at the front.
func (w *ackWindow) advance() (moved bool) {
	for len(w.pending) > 0 && w.pending[0].done {
		w.acked = w.pending[0].next
		w.pending = w.pending[1:]
		w.first++
		moved = true
	}
	if len(w.pending) == 0 {
		w.pending = w.pending[:0:0] // let the backing array go
	}
	return moved
}

// outstanding is the number of lines sent and not yet acknowledged.
func (w *ackWindow) outstanding() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}
