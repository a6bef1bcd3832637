package ship

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// queue is one partition's records: the batch being filled, the batches sealed and
// waiting, and the sender goroutine (run) that sends them in order.
type queue struct {
	p         *Producer
	topic     string
	partition int32
	wake      chan struct{} // capacity 1: something to look at

	mu      sync.Mutex
	cur     *batch   // being filled; nil when empty
	ready   []*batch // sealed, in order
	stopped bool     // the sender has exited: nothing more is accepted

	// Owned by the sender goroutine.
	seq    int32    // the idempotent producer's next sequence number
	seqGen uint64   // the producer identity seq counts for
	tokens []uint64 // scratch for RunAcker
}

// batch is a run of records of one partition sent in one request.
type batch struct {
	created time.Time
	rb      sarama.RecordBatch
	acks    []ackRef
	wire    int64 // sum of Record.wireSize
	bytes   int64 // what the batch holds of the in-flight budget
	seqGen  uint64
	recs    []sarama.Record // allocated in chunks, not one by one
}

// ackRef is whom to tell of a record's acknowledgement.
type ackRef struct {
	a     Acker
	token uint64
}

// add appends a record to the partition's current batch, sealing the batch when it is
// full.
func (q *queue) add(r *Record, ack ackRef, wire, mem int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return ErrClosed
	}
	cfg := &q.p.cfg
	if q.cur != nil && q.cur.wire+wire > q.p.batchLimit {
		q.seal()
	}
	wake := false
	if q.cur == nil {
		q.cur = newBatch(r.Timestamp, q.p.sc)
		wake = true // the sender starts the linger timer
	}
	q.cur.add(r, ack, wire, mem, cfg.FlushBytes)
	if q.cur.wire >= int64(cfg.FlushBytes) || (cfg.FlushMessages > 0 && len(q.cur.acks) >= cfg.FlushMessages) {
		q.seal()
		wake = true
	}
	if wake {
		q.signal()
	}
	return nil
}

// seal moves the current batch to the ready list. q.mu is held.
func (q *queue) seal() {
	if q.cur != nil {
		q.ready = append(q.ready, q.cur)
		q.cur = nil
	}
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func newBatch(first time.Time, sc *sarama.Config) *batch {
	if first.IsZero() {
		first = time.Now()
	}
	return &batch{
		created: time.Now(),
		rb: sarama.RecordBatch{
			Version:          2,
			FirstTimestamp:   first,
			MaxTimestamp:     first,
			Codec:            sc.Producer.Compression,
			CompressionLevel: sc.Producer.CompressionLevel,
			ProducerID:       -1,
			ProducerEpoch:    -1,
			FirstSequence:    -1,
		},
	}
}

func (b *batch) add(r *Record, ack ackRef, wire, mem int64, flushBytes int) {
	if len(b.recs) == cap(b.recs) {
		// Size the chunks (and the batch's slices) for the records a batch will hold.
		n := min(max(16, flushBytes/int(wire)/4), 4096)
		b.recs = make([]sarama.Record, 0, n)
		if b.acks == nil {
			b.acks = make([]ackRef, 0, 4*n)
			b.rb.Records = make([]*sarama.Record, 0, 4*n)
		}
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	if ts.After(b.rb.MaxTimestamp) {
		b.rb.MaxTimestamp = ts
	}
	b.recs = append(b.recs, sarama.Record{
		OffsetDelta:    int64(len(b.rb.Records)),
		TimestampDelta: ts.Sub(b.rb.FirstTimestamp),
		Key:            r.Key,
		Value:          r.Value,
		Headers:        r.Headers,
	})
	b.rb.Records = append(b.rb.Records, &b.recs[len(b.recs)-1])
	b.rb.LastOffsetDelta = int32(len(b.rb.Records) - 1)
	b.acks = append(b.acks, ack)
	b.wire += wire
	b.bytes += mem
}

// split cuts a batch the broker found too large into two halves.
func (b *batch) split(sc *sarama.Config) (*batch, *batch) {
	half := len(b.rb.Records) / 2
	parts := [2]*batch{}
	// The budget is given back for the whole batch once both halves are acknowledged:
	// the first half carries none of it, the second all.
	for i, recs := range [2][]*sarama.Record{b.rb.Records[:half], b.rb.Records[half:]} {
		acks := b.acks[:half]
		if i == 1 {
			acks = b.acks[half:]
		}
		nb := newBatch(b.rb.FirstTimestamp, sc)
		nb.created = b.created
		for j, rec := range recs {
			rec.OffsetDelta = int64(j)
			nb.rb.Records = append(nb.rb.Records, rec)
			if ts := b.rb.FirstTimestamp.Add(rec.TimestampDelta); ts.After(nb.rb.MaxTimestamp) {
				nb.rb.MaxTimestamp = ts
			}
		}
		nb.rb.LastOffsetDelta = int32(len(recs) - 1)
		nb.acks = acks
		nb.wire = b.wire * int64(len(recs)) / int64(len(b.rb.Records))
		if i == 1 {
			nb.bytes = b.bytes
		}
		parts[i] = nb
	}
	return parts[0], parts[1]
}

// run is the partition's sender: it seals the current batch once it lingered for
// FlushFrequency, and sends the sealed batches one at a time, in order, each until
// Kafka acknowledges it. With FlushFrequency 0 it works as Nagle's algorithm does: a
// record that finds the sender idle is sent at once, and those added while a request
// is in flight gather into one batch sent when the answer comes, so that batches grow
// with the load and no record waits for a timer. It exits when the producer closes and the queue is empty, or
// when Close gives up.
func (q *queue) run() {
	defer q.p.wg.Done()
	p := q.p
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		closing := p.closing.Load()
		q.mu.Lock()
		if q.cur != nil && (closing || time.Since(q.cur.created) >= p.cfg.FlushFrequency) {
			q.seal()
		}
		var b *batch
		if len(q.ready) > 0 {
			b = q.ready[0]
			q.ready[0] = nil // the backing array must not keep it
			q.ready = q.ready[1:]
		}
		var wait time.Duration = -1
		if b == nil && q.cur != nil {
			wait = p.cfg.FlushFrequency - time.Since(q.cur.created)
		}
		if b == nil && q.cur == nil && closing {
			q.stopped = true
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		if b != nil {
			if !q.send(b) {
				q.abandon()
				return
			}
			continue
		}
		if wait >= 0 {
			linger.Reset(wait)
		}
		select {
		case <-q.wake:
		case <-linger.C:
		case <-p.ctx.Done():
			q.abandon()
			return
		}
		linger.Stop()
	}
}

// abandon stops the queue when Close gives up: what is queued is never acknowledged,
// and its budget is given back.
func (q *queue) abandon() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.seal()
	for _, b := range q.ready {
		q.p.budget.release(b.bytes)
		q.p.abandoned.Add(int64(len(b.acks)))
	}
	q.ready = nil
}

// ack tells the acks of a batch, in order; a run of one RunAcker's records is
// told at once.
func (q *queue) ack(acks []ackRef) {
	for i := 0; i < len(acks); {
		a := acks[i].a
		j := i + 1
		for j < len(acks) && acks[j].a == a {
			j++
		}
		if ra, ok := a.(RunAcker); ok && j-i > 1 {
			q.tokens = q.tokens[:0]
			for _, ack := range acks[i:j] {
				q.tokens = append(q.tokens, ack.token)
			}
			ra.AckRun(q.tokens)
		} else {
			for _, ack := range acks[i:j] {
				a.Ack(ack.token)
			}
		}
		i = j
	}
}

// send sends b until Kafka acknowledges it, then calls its acks in order. It reports
// false if the producer gave up first (b is then not acknowledged).
func (q *queue) send(b *batch) bool {
	p := q.p
	backoff := p.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		if p.ctx.Err() != nil {
			p.budget.release(b.bytes)
			p.abandoned.Add(int64(len(b.acks)))
			return false
		}
		if attempt > 0 {
			p.Retries.Add(int64(len(b.acks)))
		}
		err := q.produce(b)
		if err == nil {
			p.budget.release(b.bytes)
			p.Acked.Add(int64(len(b.acks)))
			q.ack(b.acks)
			return true
		}
		p.Errors.Add(1)
		var tooLarge errTooLarge
		if errors.As(err, &tooLarge) && len(b.acks) > 1 {
			if b.seqGen != 0 && b.seqGen == q.seqGen {
				q.seq = b.rb.FirstSequence // not written: the halves take these numbers
			}
			first, second := b.split(p.sc)
			p.log.Warn("batch too large for the broker; splitting it", "topic", q.topic, "partition", q.partition, "records", len(b.acks), "err", err)
			q.mu.Lock()
			q.ready = append([]*batch{second}, q.ready...)
			q.mu.Unlock()
			b = first
			continue
		}
		if attempt == 0 && connectionLost(err) {
			// Most often the broker closed a connection idle for its idle timeout,
			// which the write could not tell: the first line after a quiet spell would
			// wait a backoff for it. The retry dials again at once; a second failure
			// backs off as any other.
			p.log.Debug("connection to the broker lost; sending again on a new one", "topic", q.topic, "partition", q.partition, "err", err)
			continue
		}
		p.log.Warn("produce failed; retrying", "topic", q.topic, "partition", q.partition, "records", len(b.acks), "err", err, "retry_in", backoff)
		if !sleep(p.ctx, backoff) {
			p.budget.release(b.bytes)
			p.abandoned.Add(int64(len(b.acks)))
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// errTooLarge is the broker refusing a batch for its size: it was not written.
type errTooLarge struct{ err error }

func (e errTooLarge) Error() string { return e.err.Error() }

// produce makes one attempt at writing b.
func (q *queue) produce(b *batch) error {
	p := q.p
	client, err := p.connect(p.ctx)
	if err != nil {
		return err
	}
	broker, err := client.Leader(q.topic, q.partition)
	if err != nil {
		client.RefreshMetadata(q.topic)
		return fmt.Errorf("leader: %w", err)
	}
	if p.idempotent {
		pid, err := p.producerID(client)
		if err != nil {
			return err
		}
		if b.seqGen != pid.gen {
			// First attempt under this identity: number the batch. A retry under the
			// same identity keeps its numbers, so that the broker drops a copy it has.
			if q.seqGen != pid.gen {
				q.seq, q.seqGen = 0, pid.gen
			}
			b.rb.FirstSequence = q.seq
			b.rb.ProducerID, b.rb.ProducerEpoch = pid.id, pid.epoch
			b.seqGen = pid.gen
			q.seq += int32(len(b.acks))
		}
	}
	req := &sarama.ProduceRequest{Version: p.version, RequiredAcks: p.sc.Producer.RequiredAcks, Timeout: p.timeoutMs}
	req.AddBatch(q.topic, q.partition, &b.rb)
	resp, err := broker.Produce(req)
	if err != nil {
		if !connectionLost(err) {
			// A lost connection is dialled again by the next attempt; the leader
			// did not move for it (if it did, that attempt fails and refreshes).
			client.RefreshMetadata(q.topic)
		}
		return fmt.Errorf("produce to %s: %w", broker.Addr(), err)
	}
	if resp == nil { // acks=0: no answer
		return nil
	}
	block := resp.GetBlock(q.topic, q.partition)
	if block == nil {
		return errors.New("the produce response lacks the partition")
	}
	switch {
	case errors.Is(block.Err, sarama.ErrNoError), errors.Is(block.Err, sarama.ErrDuplicateSequenceNumber):
		return nil
	case errors.Is(block.Err, sarama.ErrMessageSizeTooLarge), errors.Is(block.Err, sarama.ErrMessageSetSizeTooLarge):
		return errTooLarge{block.Err}
	case errors.Is(block.Err, sarama.ErrOutOfOrderSequenceNumber), errors.Is(block.Err, sarama.ErrUnknownProducerID),
		errors.Is(block.Err, sarama.ErrInvalidProducerEpoch), errors.Is(block.Err, sarama.ErrInvalidProducerIDMapping):
		// Kafka lost this producer's state: start again under a new identity. The
		// batch may be written twice; the transfer's document ids absorb that.
		p.resetProducerID(b.seqGen)
		return fmt.Errorf("idempotent producer state lost: %w", block.Err)
	default:
		client.RefreshMetadata(q.topic)
		return block.Err
	}
}
