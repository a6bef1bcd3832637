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
	lastWire int64     // Record.wireSize bytes of the last batch sent
	seq      int32     // the idempotent producer's next sequence number
	seqGen   uint64    // the producer identity seq counts for
	tokens   []uint64  // scratch for RunAcker
	inflight []*flight // requests sent and not yet settled, in the order sent
	// results receives each request's outcome from sarama's goroutines; its
	// capacity is the window, so that they never block.
	results chan *flight
	// serial is how many batches at the front of ready are sent one at a time,
	// each until Kafka has it: the batches of a failed window.
	serial int
}

// flight is a batch sent and its outcome.
type flight struct {
	b    *batch
	sent time.Time
	resp *sarama.ProduceResponse
	err  error
	done bool // the outcome arrived
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

// run is the partition's sender. It sends the sealed batches in order, with up to
// MaxInFlightRequests of them in flight, so that the next batch is encoded and sent
// while the broker stores the previous one; due decides when the batch being filled
// is sealed (with FlushFrequency 0, at once when nothing is in flight, so that no
// record waits for a timer at light load, and batches grow with the load). Batches
// are acknowledged in order. When one fails, the window drains, and the batches not
// written are sent again one at a time, each until Kafka has it (send), before the
// window opens again. It exits when the producer closes and the queue is empty, or
// when Close gives up.
func (q *queue) run() {
	defer q.p.wg.Done()
	p := q.p
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		closing := p.closing.Load()
		window := p.window
		if q.serial > 0 {
			window = 1
		}
		q.mu.Lock()
		var wait time.Duration = -1 // how long until the current batch may go
		if q.cur != nil {
			wait = q.due(window)
			if closing || wait == 0 {
				q.seal()
				wait = -1
			}
		}
		var b *batch
		if len(q.ready) > 0 && len(q.inflight) < window {
			b = q.ready[0]
			q.ready[0] = nil // the backing array must not keep it
			q.ready = q.ready[1:]
		}
		if b == nil && q.cur == nil && closing && len(q.inflight) == 0 {
			q.stopped = true
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		switch {
		case b != nil && q.serial > 0:
			q.serial--
			if !q.send(b, true) {
				q.abandon()
				return
			}
			continue
		case b != nil && window == 1:
			if !q.send(b, false) {
				q.abandon()
				return
			}
			continue
		case b != nil:
			q.start(b)
			if !q.settle() {
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
		case f := <-q.results:
			f.done = true
			if !q.settle() {
				q.abandon()
				return
			}
		case <-p.ctx.Done():
			q.abandon()
			return
		}
		linger.Stop()
	}
}

// pipelineAfter is how long the oldest request in flight must have been waiting
// for its answer before a batch that is not full takes the next request slot (with
// FlushFrequency 0). A broker that answers sooner gets one request at a time, and
// the records gather meanwhile into larger batches; a broker that is slow to answer
// (an fsync, a pause) holds the records behind it for no more than this.
const pipelineAfter = time.Millisecond

// A partition whose last batch held busyBatch bytes or more is busy: with
// FlushFrequency 0, its next batch lingers up to busyLinger to fill (as Kafka's
// linger.ms), since many small requests would cost the agent and the broker more
// CPU per record than they save in latency. Below that rate (about 64 KiB a
// millisecond), a batch goes at once when nothing is in flight.
const (
	busyBatch  = 64 << 10
	busyLinger = 5 * time.Millisecond
)

// due says how long the current batch, not full yet, may still wait for more
// records before it is sealed: 0 now, or -1 until an answer comes (a request slot
// frees). With FlushFrequency, a batch waits that long after its first record; with
// 0, it goes at once when nothing is in flight, and otherwise once the oldest
// request has waited pipelineAfter for its answer and a slot is free, or, on a busy
// partition, after busyLinger. q.mu is held.
func (q *queue) due(window int) time.Duration {
	ff := q.p.cfg.FlushFrequency
	if ff == 0 && q.lastWire >= busyBatch {
		ff = busyLinger
	}
	if ff > 0 {
		return max(0, ff-time.Since(q.cur.created))
	}
	if len(q.inflight) == 0 {
		return 0
	}
	if len(q.inflight) >= window {
		return -1
	}
	return max(0, pipelineAfter-time.Since(q.inflight[0].sent))
}

// start sends b without waiting for Kafka's answer, which arrives on q.results.
func (q *queue) start(b *batch) {
	f := &flight{b: b, sent: time.Now()}
	q.lastWire = b.wire
	q.inflight = append(q.inflight, f)
	broker, req, err := q.request(b)
	if err == nil {
		if req.RequiredAcks == sarama.NoResponse {
			err = broker.AsyncProduce(req, nil)
			f.done = true // no answer comes
		} else {
			err = broker.AsyncProduce(req, func(resp *sarama.ProduceResponse, err error) {
				f.resp, f.err = resp, err
				q.results <- f
			})
		}
	}
	if err != nil {
		f.err, f.done = err, true // no answer comes
	}
}

// settle acknowledges the batches of the window that Kafka has, in order. When one
// failed, it waits for the rest of the window, acknowledges those written anyway,
// and queues the others to be sent again one at a time, in order, ahead of what is
// ready. It reports false if the producer gave up meanwhile.
func (q *queue) settle() bool {
	p := q.p
	for len(q.inflight) > 0 && q.inflight[0].done {
		f := q.inflight[0]
		if q.outcome(f.b, f.resp, f.err) != nil {
			break
		}
		q.inflight[0] = nil
		q.inflight = q.inflight[1:]
		q.acked(f.b)
	}
	if len(q.inflight) == 0 || !q.inflight[0].done {
		return true
	}
	// The first batch of the window failed: the ones after it were either refused
	// (an idempotent producer's batches must arrive in order) or written out of
	// order (acks 0 or 1, as in Kafka with several requests in flight).
	for _, f := range q.inflight {
		for !f.done {
			select {
			case g := <-q.results:
				g.done = true
			case <-p.ctx.Done():
				return false
			}
		}
	}
	p.Errors.Add(1)
	first := q.inflight[0]
	firstErr := q.outcome(first.b, first.resp, first.err)
	var again []*batch
	for i, f := range q.inflight {
		if i > 0 && q.outcome(f.b, f.resp, f.err) == nil {
			q.acked(f.b)
			continue
		}
		again = append(again, f.b)
	}
	p.log.Warn("produce failed; sending the window again one batch at a time", "topic", q.topic, "partition", q.partition, "batches", len(again), "err", firstErr)
	clear(q.inflight)
	q.inflight = q.inflight[:0]
	q.mu.Lock()
	q.ready = append(again, q.ready...)
	q.mu.Unlock()
	q.serial += len(again)
	return true
}

// abandon stops the queue when Close gives up: what is queued or in flight is never
// acknowledged, and its budget is given back.
func (q *queue) abandon() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.seal()
	for _, f := range q.inflight {
		q.ready = append(q.ready, f.b)
	}
	q.inflight = nil
	for _, b := range q.ready {
		q.p.budget.release(b.bytes)
		q.p.abandoned.Add(int64(len(b.acks)))
	}
	q.ready = nil
}

// acked gives back b's budget and tells its acks.
func (q *queue) acked(b *batch) {
	q.p.budget.release(b.bytes)
	q.p.Acked.Add(int64(len(b.acks)))
	q.ack(b.acks)
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

// send sends b, alone in flight, until Kafka acknowledges it, then calls its acks in
// order; retry says b was sent before. It reports false if the producer gave up
// first (b is then not acknowledged).
func (q *queue) send(b *batch, retry bool) bool {
	p := q.p
	q.lastWire = b.wire
	backoff := p.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		if p.ctx.Err() != nil {
			p.budget.release(b.bytes)
			p.abandoned.Add(int64(len(b.acks)))
			return false
		}
		if attempt > 0 || retry {
			p.Retries.Add(int64(len(b.acks)))
		}
		err := q.produce(b)
		if err == nil {
			q.acked(b)
			return true
		}
		p.Errors.Add(1)
		var tooLarge errTooLarge
		if errors.As(err, &tooLarge) && len(b.acks) > 1 {
			q.mu.Lock()
			if b.seqGen != 0 && b.seqGen == q.seqGen {
				// Not written, and neither was anything numbered after it: the halves
				// take these numbers, and the batches behind them are numbered again.
				q.seq = b.rb.FirstSequence
				for _, r := range q.ready {
					r.seqGen = 0
				}
			}
			first, second := b.split(p.sc)
			p.log.Warn("batch too large for the broker; splitting it", "topic", q.topic, "partition", q.partition, "records", len(b.acks), "err", err)
			q.ready = append([]*batch{second}, q.ready...)
			q.mu.Unlock()
			if q.serial > 0 || retry {
				q.serial++ // the second half belongs to the batches sent one at a time
			}
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

// request prepares b's Produce request to its partition's leader: it connects if
// need be and, for an idempotent producer, numbers b on its first attempt under the
// producer's current identity.
func (q *queue) request(b *batch) (*sarama.Broker, *sarama.ProduceRequest, error) {
	p := q.p
	client, err := p.connect(p.ctx)
	if err != nil {
		return nil, nil, err
	}
	broker, err := client.Leader(q.topic, q.partition)
	if err != nil {
		client.RefreshMetadata(q.topic)
		return nil, nil, fmt.Errorf("leader: %w", err)
	}
	if p.idempotent {
		pid, err := p.producerID(client)
		if err != nil {
			return nil, nil, err
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
	return broker, req, nil
}

// produce makes one attempt at writing b and waits for the answer.
func (q *queue) produce(b *batch) error {
	broker, req, err := q.request(b)
	if err != nil {
		return err
	}
	resp, err := broker.Produce(req)
	err = q.outcome(b, resp, err)
	if err != nil {
		q.p.afterFailure(q.topic, b, err)
	}
	return err
}

// outcome is what Kafka's answer to b's request says: nil once b is written.
func (q *queue) outcome(b *batch, resp *sarama.ProduceResponse, err error) error {
	if err != nil {
		return fmt.Errorf("produce: %w", err)
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
		return errStateLost{block.Err}
	default:
		return block.Err
	}
}

// errStateLost is Kafka having lost the idempotent producer's state.
type errStateLost struct{ err error }

func (e errStateLost) Error() string { return "idempotent producer state lost: " + e.err.Error() }
func (e errStateLost) Unwrap() error { return e.err }

// afterFailure acts on a failed attempt at writing b, sent alone: Kafka lost the
// idempotent producer's state (start again under a new identity; the batch may then
// be written twice, which the transfer's document ids absorb), or the metadata may be
// stale.
func (p *Producer) afterFailure(topic string, b *batch, err error) {
	var lost errStateLost
	switch {
	case errors.As(err, &lost):
		p.resetProducerID(b.seqGen)
	case !errors.As(err, new(errTooLarge)) && !connectionLost(err):
		// A lost connection is dialled again by the next attempt; the leader did
		// not move for it (if it did, that attempt fails and refreshes).
		p.mu.Lock()
		client := p.client
		p.mu.Unlock()
		if client != nil {
			client.RefreshMetadata(topic)
		}
	}
}
