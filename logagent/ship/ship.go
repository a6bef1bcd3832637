// Package ship produces lines to Kafka with sarama and reports each acknowledgement,
// retrying failures forever and bounding the bytes in flight, so that a Kafka outage
// pauses reading instead of growing memory.
package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/partition"
)

// Config configures the producer.
type Config struct {
	Brokers          []string
	RequiredAcks     string // "0", "1" or "all"
	Compression      string // none, gzip, snappy, lz4, zstd
	MaxInFlightBytes int64  // bytes of lines sent and not yet acknowledged
	FlushBytes       int
	FlushMessages    int
	FlushFrequency   time.Duration
	MaxMessageBytes  int
	ClientID         string
}

// SaramaConfig builds the sarama configuration for c.
func (c Config) SaramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.ClientID = c.ClientID
	switch strings.ToLower(c.RequiredAcks) {
	case "0", "none":
		sc.Producer.RequiredAcks = sarama.NoResponse
	case "1", "local", "leader":
		sc.Producer.RequiredAcks = sarama.WaitForLocal
	case "all", "-1":
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Idempotent = true
		sc.Net.MaxOpenRequests = 1
	default:
		return nil, fmt.Errorf("required_acks %q: want 0, 1 or all", c.RequiredAcks)
	}
	switch strings.ToLower(c.Compression) {
	case "", "none":
		sc.Producer.Compression = sarama.CompressionNone
	case "gzip":
		sc.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		sc.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		sc.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		sc.Producer.Compression = sarama.CompressionZSTD
	default:
		return nil, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = partition.NewPartitioner
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	sc.Producer.Flush.Bytes = c.FlushBytes
	sc.Producer.Flush.Messages = c.FlushMessages
	sc.Producer.Flush.Frequency = c.FlushFrequency
	if c.MaxMessageBytes > 0 {
		sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	}
	sc.Metadata.Retry.Max = 5
	sc.Metadata.Retry.Backoff = 500 * time.Millisecond
	sc.Net.DialTimeout = 5 * time.Second
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka producer config: %w", err)
	}
	return sc, nil
}

// Producer sends messages and calls each one's ack once Kafka has it.
type Producer struct {
	cfg    Config
	sc     *sarama.Config
	log    *slog.Logger
	budget *budget

	Retries atomic.Int64 // messages sent again after a failure
	Errors  atomic.Int64 // produce failures reported by sarama
	Acked   atomic.Int64 // messages acknowledged

	mu      sync.Mutex
	ap      sarama.AsyncProducer
	closing bool
	wg      sync.WaitGroup
}

type pending struct {
	ack  func()
	size int64
}

// New returns a producer; it connects on the first Send and reconnects as needed.
func New(cfg Config, log *slog.Logger) (*Producer, error) {
	sc, err := cfg.SaramaConfig()
	if err != nil {
		return nil, err
	}
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = 16 << 20
	}
	return &Producer{cfg: cfg, sc: sc, log: log, budget: newBudget(cfg.MaxInFlightBytes)}, nil
}

// InFlightBytes is the number of bytes sent and not yet acknowledged.
func (p *Producer) InFlightBytes() int64 { return p.budget.inUse() }

// Send queues msg and calls ack once Kafka acknowledged it. It blocks while the bytes
// in flight are at the limit, and fails only when ctx ends or the producer closes.
func (p *Producer) Send(ctx context.Context, msg *sarama.ProducerMessage, ack func()) error {
	size := int64(msg.Value.Length() + 64)
	if err := p.budget.acquire(ctx, size); err != nil {
		return err
	}
	msg.Metadata = &pending{ack: ack, size: size}
	ap, err := p.producer(ctx)
	if err != nil {
		p.budget.release(size)
		return err
	}
	select {
	case ap.Input() <- msg:
		return nil
	case <-ctx.Done():
		p.budget.release(size)
		return ctx.Err()
	}
}

// producer returns the sarama producer, connecting with backoff while Kafka is
// unreachable.
func (p *Producer) producer(ctx context.Context) (sarama.AsyncProducer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	backoff := 250 * time.Millisecond
	for p.ap == nil {
		if p.closing {
			return nil, errors.New("producer closed")
		}
		ap, err := sarama.NewAsyncProducer(p.cfg.Brokers, p.sc)
		if err == nil {
			p.ap = ap
			p.wg.Add(2)
			go p.successes(ap)
			go p.errors(ap)
			p.log.Info("connected to kafka", "brokers", p.cfg.Brokers)
			break
		}
		p.log.Warn("kafka unreachable; reading is paused", "brokers", p.cfg.Brokers, "err", err, "retry_in", backoff)
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			p.mu.Lock()
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		p.mu.Lock()
		backoff = min(2*backoff, 10*time.Second)
	}
	return p.ap, nil
}

func (p *Producer) successes(ap sarama.AsyncProducer) {
	defer p.wg.Done()
	for msg := range ap.Successes() {
		pd := msg.Metadata.(*pending)
		p.budget.release(pd.size)
		p.Acked.Add(1)
		pd.ack()
	}
}

// errors re-sends every failed message after a backoff. Ordering within a file may
// change on such a retry; that is harmless because every record carries its file
// offset and the transfer indexes it under a deterministic id.
func (p *Producer) errors(ap sarama.AsyncProducer) {
	defer p.wg.Done()
	backoff := 100 * time.Millisecond
	for perr := range ap.Errors() {
		p.Errors.Add(1)
		p.log.Warn("produce failed; retrying", "topic", perr.Msg.Topic, "err", perr.Err, "retry_in", backoff)
		msg := perr.Msg
		p.wg.Add(1)
		go func(d time.Duration) {
			defer p.wg.Done()
			time.Sleep(d)
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.closing {
				return // not acknowledged: the file's offset does not move past it
			}
			p.Retries.Add(1)
			ap.Input() <- resetForRetry(msg)
		}(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// resetForRetry clears what sarama filled in on the failed attempt.
func resetForRetry(m *sarama.ProducerMessage) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp, Metadata: m.Metadata}
}

// Close waits up to timeout for outstanding acknowledgements, then stops the producer.
func (p *Producer) Close(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.budget.inUse() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	p.mu.Lock()
	p.closing = true
	ap := p.ap
	p.mu.Unlock()
	p.budget.close()
	var err error
	if ap != nil {
		ap.AsyncClose()
		p.wg.Wait()
	}
	if n := p.budget.inUse(); n > 0 {
		err = fmt.Errorf("%d bytes were not acknowledged before shutdown; they are read again at the next start", n)
	}
	return err
}

// budget bounds the bytes in flight.
type budget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	used   int64
	max    int64
	closed bool
}

func newBudget(max int64) *budget {
	b := &budget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used > 0 && b.used+n > b.max {
		if b.closed {
			return errors.New("producer closed")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b.cond.Wait()
	}
	if b.closed {
		return errors.New("producer closed")
	}
	b.used += n
	return nil
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
}
