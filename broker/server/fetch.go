package server

import (
	"math"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
	"github.com/logpipe/logpipe/internal/recordbatch"
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
	dropDuplicates(r)
	allowed := c.fetchAllowed(r)
	wait := min(time.Duration(max(r.MaxWaitMillis, 0))*time.Millisecond, s.cfg.MaxFetchWait)
	deadline := time.Now().Add(wait)
	minBytes := int64(max(r.MinBytes, 0))
	var timer *time.Timer
	for {
		topics, total, waits, failed := s.readFetch(r, allowed)
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
// connection closes or the server stops. One goroutine waits on all partitions,
// however many the request names.
func (c *conn) waitAny(waits []waitTarget, timeout <-chan time.Time) {
	if len(waits) == 1 {
		select {
		case <-waits[0].p.Wait(waits[0].offset):
		case <-timeout:
		case <-c.ctx.Done():
		case <-c.s.stopping:
		}
		return
	}
	cases := make([]reflect.SelectCase, 0, len(waits)+3)
	for _, ch := range []any{timeout, c.ctx.Done(), c.s.stopping} {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	for _, w := range waits {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.p.Wait(w.offset))})
	}
	reflect.Select(cases)
}

// dropDuplicates removes repeated topics and partitions from a Fetch request, so
// that each partition is read and answered once however often it is named.
// Clients never repeat one; a request that does is built to multiply work.
func dropDuplicates(r *kmsg.FetchRequest) {
	type key struct {
		topic     string
		id        [16]byte
		partition int32
	}
	n := 0
	for _, t := range r.Topics {
		n += len(t.Partitions)
	}
	seen := make(map[key]struct{}, n)
	topics := r.Topics[:0]
	for _, t := range r.Topics {
		parts := t.Partitions[:0]
		for _, p := range t.Partitions {
			k := key{t.Topic, t.TopicID, p.Partition}
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			t.Partitions = parts
			topics = append(topics, t)
		}
	}
	r.Topics = topics
}

// readFetch reads what the request asks for. It reports the bytes read, what to
// wait on for more, and whether a partition failed (Kafka answers at once then).
// A topic with false in allowed (nil: all allowed) answers
// TOPIC_AUTHORIZATION_FAILED for each partition.
func (s *Server) readFetch(r *kmsg.FetchRequest, allowed map[string]bool) (topics []fetchTopic, total int64, waits []waitTarget, failed bool) {
	remaining := int64(r.MaxBytes)
	if r.Version < 3 || remaining <= 0 {
		remaining = math.MaxInt32
	}
	topics = make([]fetchTopic, 0, len(r.Topics))
	for _, rt := range r.Topics {
		ft := fetchTopic{name: rt.Topic, partitions: make([]fetchPartition, 0, len(rt.Partitions))}
		t := s.store.Topic(rt.Topic)
		denied := allowed != nil && !allowed[rt.Topic]
		for _, rp := range rt.Partitions {
			fp := fetchPartition{partition: rp.Partition, hw: -1, lso: -1, logStart: -1}
			if denied {
				fp.errorCode = topicDenied
				failed = true
				ft.partitions = append(ft.partitions, fp)
				continue
			}
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
	var hdr [recordbatch.HeaderSize]byte
	var n int64
	for pos+recordbatch.HeaderSize <= end {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			break
		}
		h := recordbatch.ParseHeader(hdr[:])
		if h.Length < recordbatch.HeaderSize {
			break
		}
		n += int64(h.NumRecords)
		pos += h.Length
	}
	return n
}
