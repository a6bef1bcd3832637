package server

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
	"github.com/logpipe/logpipe/internal/recordbatch"
)

// syncTarget is a partition appended by an acks=all produce, waiting for its fsync.
type syncTarget struct {
	p      *storage.Partition
	end    int64 // Sync(end): every record below end durable
	ti, pi int   // the partition's place in the response
}

// handleProduce appends every partition's batch in the reader goroutine, so that
// the batches of one connection reach the log in request order (idempotent
// producers pipeline up to five requests). acks=all then waits for the fsyncs in
// another goroutine. An error closes the connection (acks=0 failures).
func (c *conn) handleProduce(h header, r *kmsg.ProduceRequest, start time.Time) error {
	s := c.s
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	acks := r.Acks
	var fixed int16 // an error code for every partition
	switch {
	case acks != 0 && acks != 1 && acks != -1:
		fixed = kerr.InvalidRequiredAcks.Code
	case r.TransactionID != nil:
		// Transactions are out of scope for this broker.
		fixed = kerr.TransactionalIDAuthorizationFailed.Code
	}
	var syncs []syncTarget
	var firstErr error
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(r.Topics))
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		t := s.store.Topic(rt.Topic)
		allowed := c.can(opWrite, rtTopic, rt.Topic)
		out := kmsg.NewProduceResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			op := kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			op.LogAppendTime = -1
			var part *storage.Partition
			if fixed != 0 {
				op.ErrorCode = fixed
			} else if !allowed {
				op.ErrorCode = topicDenied
				if firstErr == nil {
					firstErr = fmt.Errorf("produce to %s: %w", rt.Topic, errTopicDenied)
				}
			} else {
				var res storage.AppendResult
				var err error
				part, res, err = s.appendBatch(t, rp.Partition, rp.Records, r.Version)
				if err != nil {
					op.ErrorCode = errorCode(err)
					op.ErrorMessage = errMessage(err) // sent from v8
					if !clientError(op.ErrorCode) {
						c.log.Error("append failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					} else {
						c.log.Debug("produce rejected", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
					if firstErr == nil {
						firstErr = fmt.Errorf("produce to %s/%d: %w", rt.Topic, rp.Partition, err)
					}
				} else {
					op.BaseOffset = res.BaseOffset
					op.LogAppendTime = res.LogAppendTime
					op.LogStartOffset = res.LogStartOffset
					if acks == -1 {
						syncs = append(syncs, syncTarget{p: part, end: res.LastOffset + 1, ti: ti, pi: pi})
					}
				}
			}
			if op.ErrorCode != 0 {
				op.BaseOffset = -1
				op.LogStartOffset = -1
			}
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	if acks == 0 {
		s.metrics.request(h.key, time.Since(start))
		if fixed != 0 {
			return fmt.Errorf("acks=0 produce refused: error code %d", fixed)
		}
		return firstErr // like Kafka: the client notices the closed connection and refreshes metadata
	}
	if len(syncs) == 0 {
		c.respond(h, resp, start)
		return nil
	}
	p := c.push(h)
	p.start = start
	c.goAsync(p, func(p *pending) {
		s.syncAll(resp, syncs, c)
		p.frame = responseFrame(h.corr, resp)
		p.complete()
	})
	return nil
}

// syncAll waits until every target is durable; partitions fsync concurrently, and
// storage shares each fsync among all concurrent callers of a partition.
func (s *Server) syncAll(resp *kmsg.ProduceResponse, syncs []syncTarget, c *conn) {
	one := func(t syncTarget) {
		start := time.Now()
		err := t.p.Sync(t.end)
		s.metrics.syncDone(time.Since(start))
		if err != nil {
			c.log.Error("fsync failed", "topic", t.p.Topic(), "partition", t.p.Index(), "err", err)
			op := &resp.Topics[t.ti].Partitions[t.pi]
			op.ErrorCode = kerr.KafkaStorageError.Code
			op.BaseOffset, op.LogStartOffset = -1, -1
		}
	}
	if len(syncs) == 1 {
		one(syncs[0])
		return
	}
	var wg sync.WaitGroup
	for _, t := range syncs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			one(t)
		}()
	}
	wg.Wait()
}

// appendBatch checks the batch with every produce rule (recordbatch.CheckProduced:
// one batch, its size, its codec at this version, its frame, no control or
// transactional batch, every record well formed) and appends it. Nothing that a client could fail to decode is ever stored.
func (s *Server) appendBatch(t *storage.Topic, partition int32, records []byte, version int16) (*storage.Partition, storage.AppendResult, error) {
	var res storage.AppendResult
	if t == nil {
		return nil, res, storage.ErrUnknownTopic
	}
	if err := s.checkProduceTopic(t.Name()); err != nil {
		return nil, res, err
	}
	p := t.Partition(partition)
	if p == nil {
		return nil, res, storage.ErrUnknownTopic
	}
	h, err := recordbatch.CheckProduced(records, recordbatch.ProduceRules{
		MaxBytes:        int64(t.Config().MaxMessageBytes),
		NoZstd:          version < 7,
		MaxUncompressed: s.cfg.MaxUncompressedBatchBytes,
		Decompressing:   s.decompressing,
	})
	if err != nil {
		if errors.Is(err, storage.ErrCorruptMessage) || errors.Is(err, storage.ErrInvalidRecord) {
			s.metrics.limitHit("invalid_batch")
		}
		return p, res, err
	}
	res, err = p.AppendChecked(records, h) // CheckProduced applied the produce rules
	if err != nil {
		return p, res, err
	}
	if !res.Duplicate {
		s.metrics.produced(t.Name(), len(records), int(h.NumRecords))
	}
	return p, res, nil
}

// decompressing takes one of the decompressSlots, so that at most that many
// produced batches decompress at once, and returns the function that gives it back.
func (s *Server) decompressing() (done func()) {
	s.decompressSlots <- struct{}{}
	return func() { <-s.decompressSlots }
}
