package server

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// handleFetch answers a Fetch request, long-polling until MinBytes are available,
// MaxWaitMillis passes, the connection closes or the server stops. It runs in its
// own goroutine and completes p.
func (c *conn) handleFetch(h header, r *kmsg.FetchRequest, p *pending) {
	s := c.s
	if r.Version >= 7 && r.SessionID != 0 {
		// No fetch sessions here: SessionID 0 in every answer tells clients to
		// send full fetches, so a session ID can only be stale.
		p.fetch = encodeFetch(r.Version, h.corr, 0, kerr.FetchSessionIDNotFound.Code, 0, nil)
		p.complete()
		return
	}
	deadline := time.Now().Add(time.Duration(max(r.MaxWaitMillis, 0)) * time.Millisecond)
	minBytes := int64(max(r.MinBytes, 0))
	var timer *time.Timer
	for {
		topics, total, waits, failed := s.readFetch(r)
		if total >= minBytes || failed || !time.Now().Before(deadline) || s.isStopping() || c.ctx.Err() != nil {
			p.fetch = encodeFetch(r.Version, h.corr, 0, 0, 0, topics)
			s.metrics.fetched(topics)
			p.complete()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		for _, t := range topics {
			for _, fp := range t.partitions {
				if fp.records != nil {
					fp.records.Release()
				}
			}
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		c.waitAny(waits, timer.C)
	}
}

// waitTarget is a partition and the offset a Fetch waits to be exceeded.
type waitTarget struct {
	p      *storage.Partition
	offset int64
}

// waitAny blocks until one partition gets new data, the timer fires, the
// connection closes or the server stops.
func (c *conn) waitAny(waits []waitTarget, timeout <-chan time.Time) {
	woke := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	var only <-chan struct{}
	if len(waits) == 1 {
		only = waits[0].p.Wait(waits[0].offset)
	} else {
		for _, w := range waits {
			ch := w.p.Wait(w.offset)
			go func() {
				select {
				case <-ch:
					select {
					case woke <- struct{}{}:
					default:
					}
				case <-stop:
				}
			}()
		}
	}
	select {
	case <-only:
	case <-woke:
	case <-timeout:
	case <-c.ctx.Done():
	case <-c.s.stopping:
	}
}

// readFetch reads what the request asks for. It reports the bytes read, what to
// wait on for more, and whether a partition failed (Kafka answers at once then).
func (s *Server) readFetch(r *kmsg.FetchRequest) (topics []fetchTopic, total int64, waits []waitTarget, failed bool) {
	remaining := int64(r.MaxBytes)
	if r.Version < 3 || remaining <= 0 {
		remaining = math.MaxInt32
	}
	topics = make([]fetchTopic, 0, len(r.Topics))
	for _, rt := range r.Topics {
		ft := fetchTopic{name: rt.Topic, partitions: make([]fetchPartition, 0, len(rt.Partitions))}
		t := s.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			fp := fetchPartition{partition: rp.Partition, hw: -1, lso: -1, logStart: -1}
			var part *storage.Partition
			if t != nil {
				part = t.Partition(rp.Partition)
			}
			if part == nil {
				fp.errorCode = kerr.UnknownTopicOrPartition.Code
				failed = true
				ft.partitions = append(ft.partitions, fp)
				continue
			}
			off := rp.FetchOffset
			if off < part.LogStartOffset() || off > part.HighWatermark() {
				fp.errorCode = kerr.OffsetOutOfRange.Code
				failed = true
			} else if off < part.HighWatermark() && remaining > 0 {
				limit := min(int64(rp.PartitionMaxBytes), remaining)
				sl, err := part.Read(off, int32(max(limit, 0)))
				switch {
				case err != nil:
					fp.errorCode = errorCode(err)
					failed = true
				case sl.Len() == 0:
					sl.Release()
				case sl.Len() > limit && total > 0:
					// Only the first partition with data may exceed the limits (KIP-74).
					sl.Release()
				default:
					fp.records = sl
					total += sl.Len()
					remaining -= sl.Len()
				}
			}
			// Read after the data so that the high watermark covers every record sent.
			fp.hw = part.HighWatermark()
			fp.lso = fp.hw
			fp.logStart = part.LogStartOffset()
			if fp.errorCode == 0 {
				waits = append(waits, waitTarget{p: part, offset: fp.hw})
			}
			ft.partitions = append(ft.partitions, fp)
		}
		topics = append(topics, ft)
	}
	return topics, total, waits, failed
}

// countRecords counts the records of the batches in a slice by reading their
// headers (a few bytes per batch, from the page cache).
func countRecords(sl recordSlice) int64 {
	f := sl.File()
	pos, end := sl.Pos(), sl.Pos()+sl.Len()
	var hdr [batchHeaderSize]byte
	var n int64
	for pos+batchHeaderSize <= end {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			break
		}
		size := int64(int32(binary.BigEndian.Uint32(hdr[batchLengthOffset:]))) + 12
		if size < batchHeaderSize {
			break
		}
		n += int64(int32(binary.BigEndian.Uint32(hdr[batchCountOffset:])))
		pos += size
	}
	return n
}
