package server

import (
	"sync"
	"time"
)

// budget is a count of bytes shared by all connections: the bytes of requests
// being read or waiting for their response (Kafka's queued.max.request.bytes).
// A reader takes a request's bytes as its buffer grows and the writer gives
// them back once the response is out, so a crowd of large or slow requests
// makes readers wait instead of growing memory.
type budget struct {
	total int64

	mu      sync.Mutex
	free    int64
	waiters int           // acquire calls waiting
	changed chan struct{} // closed and replaced on a release while some wait
}

func newBudget(total int64) *budget {
	return &budget{total: total, free: total, changed: make(chan struct{})}
}

// tryAcquire takes n bytes if they are free.
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free >= n {
		b.free -= n
		return true
	}
	return false
}

// acquireResult says how acquire ended.
type acquireResult int

const (
	acquired acquireResult = iota
	stopped
	timedOut
)

// acquire takes n bytes (n <= total), waiting until they are free, either stop
// channel is closed or timeout fires.
func (b *budget) acquire(n int64, stop1, stop2 <-chan struct{}, timeout <-chan time.Time) acquireResult {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return acquired
		}
		b.waiters++
		ch := b.changed
		b.mu.Unlock()
		res := acquired
		select {
		case <-ch:
		case <-stop1:
			res = stopped
		case <-stop2:
			res = stopped
		case <-timeout:
			res = timedOut
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		if res != acquired {
			return res
		}
	}
}

// release gives n bytes back.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	if b.waiters > 0 {
		close(b.changed)
		b.changed = make(chan struct{})
	}
	b.mu.Unlock()
}

// inUse returns the bytes currently taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total - b.free
}
