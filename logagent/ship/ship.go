// Package ship produces lines to Kafka and reports each acknowledgement, retrying
// failures forever and bounding the bytes in flight, so that a Kafka outage pauses
// reading instead of growing memory.
//
// It speaks Kafka through sarama's client (metadata, connections, and the Produce and
// InitProducerId requests) but does its own batching: each partition has a queue that
// appends records to the batch being filled and one sender goroutine that sends the
// sealed batches in order, a few requests in flight at a time (MaxInFlightRequests),
// and after a failure one at a time. That keeps a file's records in order through
// retries, keeps the idempotent producer's sequence numbers simple, and costs a fraction of sarama's AsyncProducer, which moves every message
// through several goroutines and channels (see the README's benchmarks).
package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/logpipe/logpipe/internal/kafkasec"
	"github.com/logpipe/logpipe/internal/partition"
)

// ErrClosed is returned by Send and by the queues once the producer is closed.
var ErrClosed = errors.New("producer closed")

// Config configures the producer.
type Config struct {
	Brokers          []string
	RequiredAcks     string        // "0", "1" or "all" (all makes the producer idempotent)
	Compression      string        // none, gzip, snappy, lz4, zstd
	MaxInFlightBytes int64         // bytes of records sent and not yet acknowledged
	FlushBytes       int           // a batch this big is sent at once
	FlushMessages    int           // a batch with this many records is sent at once; 0 = no limit
	FlushFrequency   time.Duration // how long a batch may wait for more records; 0: see queue.due
	MaxMessageBytes  int           // largest batch sent (Kafka's max.message.bytes)
	// MaxInFlightRequests is how many batches of a partition may be sent and not yet
	// answered (0: 2). Above 1, the next batch is encoded and sent while the broker
	// stores the previous one. With acks=all the order holds through failures; with
	// acks 0 or 1, the batches sent after one that failed may be written before it
	// (as in Kafka); 1 keeps the order.
	MaxInFlightRequests int
	RetryBackoff        time.Duration // wait before the first retry of a failed produce, doubling to 5 s; 0 = 100 ms
	ClientID            string
	Security            kafkasec.Config // TLS and SASL
}

// SaramaConfig builds the sarama client configuration for c.
func (c Config) SaramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.ClientID = c.ClientID
	if err := c.Security.ApplySarama(sc); err != nil {
		return nil, err
	}
	switch strings.ToLower(c.RequiredAcks) {
	case "0", "none":
		sc.Producer.RequiredAcks = sarama.NoResponse
	case "1", "local", "leader":
		sc.Producer.RequiredAcks = sarama.WaitForLocal
	case "all", "-1":
		// Idempotent: see Producer.idempotent. Not sarama's Producer.Idempotent, which
		// would hold the connection to one request in flight for all its partitions;
		// the queues keep one in flight per partition themselves.
		sc.Producer.RequiredAcks = sarama.WaitForAll
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
	if c.MaxMessageBytes > 0 {
		sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	}
	sc.Metadata.Retry.Max = 5
	sc.Metadata.Retry.Backoff = 500 * time.Millisecond
	sc.Metadata.RefreshFrequency = time.Minute // new partitions are used within a minute or so
	sc.Net.DialTimeout = 5 * time.Second
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka producer config: %w", err)
	}
	return sc, nil
}

// Record is one record to produce. Send takes ownership of its slices and of the
// headers they point to; headers that are the same for many records (a file's host
// and path) may be shared between them.
type Record struct {
	Topic     string
	Key       []byte // nil: no key; the topic's partitions are used in turn
	Value     []byte
	Headers   []*sarama.RecordHeader
	Timestamp time.Time
}

// wireSize is the most the record can take in a batch: its bytes plus the most its
// framing can take (sarama's maximumRecordOverhead, and two varints a header).
func (r *Record) wireSize() int64 {
	n := len(r.Key) + len(r.Value) + 36
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return int64(n)
}

// recordMemory is what a queued record costs in memory beyond its wire size (the
// sarama.Record, the header pointers, the ack), so that the in-flight budget bounds
// memory, not only bytes on the wire.
const recordMemory = 256

// Producer sends records and calls each one's ack once Kafka has it.
type Producer struct {
	cfg        Config
	sc         *sarama.Config
	log        *slog.Logger
	budget     *budget
	version    int16 // of Produce requests
	idempotent bool  // acks=all: batches carry a producer ID and sequence numbers
	timeoutMs  int32 // the broker's wait for acks=all
	batchLimit int64 // largest batch, in Record.wireSize bytes
	window     int   // Config.MaxInFlightRequests

	Retries atomic.Int64 // records sent again after a failure
	Errors  atomic.Int64 // failed produce attempts
	Acked   atomic.Int64 // records acknowledged

	abandoned atomic.Int64 // records Close gave up on

	ctx    context.Context // ends when Close gives up: senders stop retrying
	cancel context.CancelFunc
	wg     sync.WaitGroup // the senders

	closing atomic.Bool // set once, by Close; read by every sender on each loop

	dialMu sync.Mutex // one dial at a time; never held with mu
	mu     sync.Mutex // guards client and topics; held only briefly, never across IO
	client sarama.Client
	topics map[string]*topic

	pidMu sync.Mutex
	pid   producerID
}

// topic is what the producer knows of a topic: its partition queues.
type topic struct {
	queues  []*queue // by partition
	checked time.Time
	next    atomic.Uint32 // the partition of the next record without a key
}

// producerID is the idempotent producer's identity; gen counts the identities this
// producer had, so that a queue knows when to start its sequence numbers again.
type producerID struct {
	id    int64
	epoch int16
	gen   uint64
	ok    bool
}

// New returns a producer; it connects on the first Send and reconnects as needed.
func New(cfg Config, log *slog.Logger) (*Producer, error) {
	sc, err := cfg.SaramaConfig()
	if err != nil {
		return nil, err
	}
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = 8 << 20
	}
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = 1 << 20
	}
	if cfg.MaxInFlightRequests <= 0 {
		cfg.MaxInFlightRequests = 2
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{
		cfg: cfg, sc: sc, log: log,
		budget:     newBudget(cfg.MaxInFlightBytes),
		version:    9, // Kafka 2.8's Produce; sarama lowers it to what the broker supports
		idempotent: sc.Producer.RequiredAcks == sarama.WaitForAll,
		timeoutMs:  int32(sc.Producer.Timeout / time.Millisecond),
		batchLimit: int64(sc.Producer.MaxMessageBytes) - 61, // less the batch header
		window:     cfg.MaxInFlightRequests,
		ctx:        ctx,
		cancel:     cancel,
		topics:     map[string]*topic{},
	}
	return p, nil
}

// InFlightBytes is the number of bytes sent and not yet acknowledged.
func (p *Producer) InFlightBytes() int64 { return p.budget.inUse() }

// Acker is told of acknowledged records.
type Acker interface {
	// Ack is called, from the producer's goroutines, once Kafka acknowledged the record
	// sent with token.
	Ack(token uint64)
}

// RunAcker is an Acker that can be told of several acknowledged records at once:
// the producer then calls AckRun, with the tokens in order, instead of Ack for each
// (the slice is only valid during the call).
type RunAcker interface {
	Acker
	AckRun(tokens []uint64)
}

// Send queues r and calls a.Ack(token) once Kafka acknowledged it. It blocks while the
// bytes in flight are at the limit or Kafka cannot be reached, and fails only when ctx
// ends or the producer closes. The acks of one partition come in the order of their
// Sends (see MaxInFlightRequests for acks 0 and 1).
func (p *Producer) Send(ctx context.Context, r Record, a Acker, token uint64) error {
	return p.send(ctx, &r, a, token, nil)
}

// Route sends records that all have the same topic and key, as a file's do, looking
// their partition up once rather than for each record: again only every
// routeRecords records, or when their timestamps moved 30 seconds on, so that
// partitions added to the topic are used. Records without a key still go to the
// topic's partitions in turn. A Route is for one goroutine at a time.
type Route struct {
	p     *Producer
	q     *queue
	n     int       // records sent since the lookup
	at    time.Time // timestamp of the record that looked it up
	topic string
	key   string
}

// routeRecords is how many records a Route sends before it looks its partition up again.
const routeRecords = 4096

// Route returns a new Route; its first Send looks the partition up.
func (p *Producer) Route() *Route { return &Route{p: p} }

// Send is Producer.Send of a record of the route's topic and key.
func (rt *Route) Send(ctx context.Context, r Record, a Acker, token uint64) error {
	return rt.p.send(ctx, &r, a, token, rt)
}

func (p *Producer) send(ctx context.Context, r *Record, a Acker, token uint64, rt *Route) error {
	// Kafka keeps milliseconds: the batch's first timestamp and each record's delta
	// are both cut to them, so a record's time is only right when it is cut first.
	r.Timestamp = r.Timestamp.Truncate(time.Millisecond)
	wire := r.wireSize()
	mem := wire + recordMemory
	if err := p.budget.acquire(ctx, mem); err != nil {
		return err
	}
	var q *queue
	var err error
	if rt != nil && rt.q != nil && r.Key != nil && rt.n < routeRecords && r.Timestamp.Sub(rt.at) < 30*time.Second &&
		r.Topic == rt.topic && string(r.Key) == rt.key {
		q = rt.q
		rt.n++
	} else if q, err = p.queueFor(ctx, r); err == nil && rt != nil && r.Key != nil {
		rt.q, rt.n, rt.at, rt.topic, rt.key = q, 0, r.Timestamp, r.Topic, string(r.Key)
	}
	if err == nil {
		err = q.add(r, ackRef{a, token}, wire, mem)
	}
	if err != nil {
		p.budget.release(mem)
	}
	return err
}

// queueFor returns the queue of r's partition, connecting and learning the topic's
// partitions first if need be.
func (p *Producer) queueFor(ctx context.Context, r *Record) (*queue, error) {
	p.mu.Lock()
	t := p.topics[r.Topic]
	fresh := t != nil && time.Since(t.checked) < 30*time.Second
	p.mu.Unlock()
	if !fresh {
		var err error
		if t, err = p.refreshTopic(ctx, r.Topic); err != nil {
			return nil, err
		}
	}
	n := int32(len(t.queues))
	var i int32
	if r.Key != nil {
		i = partition.ForKey(r.Key, n)
	} else {
		i = int32(t.next.Add(1) % uint32(n))
	}
	return t.queues[i], nil
}

// refreshTopic learns (again) how many partitions a topic has, retrying while Kafka is
// unreachable or the topic is being created.
func (p *Producer) refreshTopic(ctx context.Context, name string) (*topic, error) {
	backoff := 250 * time.Millisecond
	for {
		client, err := p.connect(ctx)
		if err != nil {
			return nil, err
		}
		parts, err := client.Partitions(name)
		if err == nil && len(parts) > 0 {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.closing.Load() {
				return nil, ErrClosed
			}
			t := p.topics[name]
			if t == nil {
				t = &topic{}
				p.topics[name] = t
			}
			for i := int32(len(t.queues)); i < int32(len(parts)); i++ {
				q := &queue{p: p, topic: name, partition: i, wake: make(chan struct{}, 1), results: make(chan *flight, p.window)}
				t.queues = append(t.queues, q)
				p.wg.Add(1)
				go q.run()
			}
			t.checked = time.Now()
			return t, nil
		}
		if err == nil {
			err = errors.New("no partitions")
		}
		p.log.Warn("cannot learn the topic's partitions; reading is paused", "topic", name, "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// connect returns the sarama client, connecting with backoff while Kafka is
// unreachable. Dialing holds only dialMu, so that senders and Close, which take
// mu, never wait for the network.
func (p *Producer) connect(ctx context.Context) (sarama.Client, error) {
	p.dialMu.Lock()
	defer p.dialMu.Unlock()
	backoff := 250 * time.Millisecond
	for {
		p.mu.Lock()
		client := p.client
		p.mu.Unlock()
		if client != nil {
			return client, nil
		}
		if p.closing.Load() {
			return nil, ErrClosed
		}
		client, err := sarama.NewClient(p.cfg.Brokers, p.sc)
		if err == nil {
			p.mu.Lock()
			if p.closing.Load() { // Close ran while dialing: it did not see this client
				p.mu.Unlock()
				client.Close()
				return nil, ErrClosed
			}
			p.client = client
			p.mu.Unlock()
			p.log.Info("connected to kafka", "brokers", p.cfg.Brokers)
			return client, nil
		}
		p.log.Warn("kafka unreachable; reading is paused", "brokers", p.cfg.Brokers, "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// producerID returns the idempotent producer's identity, asking Kafka for one if it
// has none.
func (p *Producer) producerID(client sarama.Client) (producerID, error) {
	p.pidMu.Lock()
	defer p.pidMu.Unlock()
	if !p.pid.ok {
		resp, err := client.InitProducerID()
		if err != nil {
			return p.pid, fmt.Errorf("init producer id: %w", err)
		}
		if !errors.Is(resp.Err, sarama.ErrNoError) {
			return p.pid, fmt.Errorf("init producer id: %w", resp.Err)
		}
		p.pid = producerID{id: resp.ProducerID, epoch: resp.ProducerEpoch, gen: p.pid.gen + 1, ok: true}
		p.log.Info("idempotent producer", "producer_id", resp.ProducerID, "epoch", resp.ProducerEpoch)
	}
	return p.pid, nil
}

// resetProducerID drops identity gen after Kafka forgot it; the next send gets a new one.
func (p *Producer) resetProducerID(gen uint64) {
	p.pidMu.Lock()
	defer p.pidMu.Unlock()
	if p.pid.gen == gen {
		p.pid.ok = false
	}
}

// Close sends what is queued and waits up to timeout for the acknowledgements, then
// stops. Records not acknowledged by then are not acked: their files' offsets stay
// before them, so they are read again at the next start.
func (p *Producer) Close(timeout time.Duration) error {
	p.mu.Lock()
	p.closing.Store(true)
	var queues []*queue
	for _, t := range p.topics {
		queues = append(queues, t.queues...)
	}
	client := p.client
	p.mu.Unlock()
	p.budget.close()
	for _, q := range queues {
		q.signal()
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		p.cancel()
	case <-time.After(timeout):
		// Stop the retries, and close the connections under requests in flight.
		p.cancel()
		if client != nil {
			client.Close()
			client = nil
		}
		<-done
	}
	if client != nil {
		client.Close()
	}
	if n := p.abandoned.Load(); n > 0 {
		return fmt.Errorf("%d records were not acknowledged before shutdown; they are read again at the next start", n)
	}
	return nil
}

// connectionLost tells whether err is a connection to a broker found closed or reset
// by the other end, as brokers do to connections idle for their idle timeout (Kafka's
// connections.max.idle.ms). Sarama has then dropped the connection, and the next
// request dials again.
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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

// acquire takes n bytes, waiting while the budget is spent. One record is always let
// through, however big.
func (b *budget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if !b.closed && (b.used == 0 || b.used+n <= b.max) {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
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
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b.cond.Wait()
	}
	if b.closed {
		return ErrClosed
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
