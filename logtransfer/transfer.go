package logtransfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/logpipe/logpipe/logtransfer/document"
	"github.com/logpipe/logpipe/logtransfer/output"
	"github.com/prometheus/client_golang/prometheus"
)

// Transfer consumes records and indexes them.
type Transfer struct {
	cfg     Config
	log     *slog.Logger
	sink    output.Sink
	builder *document.Builder
	m       *metrics

	dlqMu sync.Mutex
	dlq   sarama.SyncProducer

	raw *rawFetcher    // reads the partitions whose fetches sarama cannot decode
	sc  *sarama.Config // the clients' configuration, security included
}

// New prepares a transfer and its output. For Elasticsearch it installs the index
// template (when configured), so Elasticsearch must answer at start.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Transfer, error) {
	builder, err := cfg.builder()
	if err != nil {
		return nil, err
	}
	var sink output.Sink
	switch cfg.Output.Type {
	case "file":
		sink, err = output.NewFile(cfg.Output.Dir)
	default:
		var ec output.ESConfig
		if ec, err = cfg.esConfig(); err != nil {
			return nil, err
		}
		ec.Warn = log.Warn
		ec.Fields = builder.Datasets.Mappings()
		if cfg.ES.Insecure {
			log.Warn("[es] insecure = true: the certificate of Elasticsearch is NOT verified")
		}
		var es *output.ES
		if es, err = output.NewES(ctx, ec); err == nil {
			log.Info("elasticsearch", "distribution", es.Cluster.Distribution, "version", es.Cluster.Version,
				"mode", cfg.ES.Mode, "target", cfg.indexPattern(), "auth", cfg.esAuth(), "retention_days", cfg.ES.RetentionDays)
			sink = es
		}
	}
	if err != nil {
		return nil, err
	}
	setClientLimits(cfg)
	t := &Transfer{cfg: cfg, log: log, sink: sink, builder: builder, m: newMetrics()}
	// The security settings are checked (and a password file read) at start.
	if t.sc, err = t.saramaConfig(); err != nil {
		sink.Close()
		return nil, err
	}
	secOpts, err := cfg.Kafka.Config.KgoOpts()
	if err != nil {
		sink.Close()
		return nil, err
	}
	t.raw = newRawFetcher(cfg, secOpts...)
	if cfg.Kafka.InsecureSkipVerify {
		log.Warn("[kafka] insecure_skip_verify = true: the broker's certificate is NOT verified; anyone on the path can read and change the logs")
	}
	log.Info("kafka security", "settings", cfg.Kafka.Config.String())
	return t, nil
}

// builder is the document builder the configuration asks for, with its datasets.
func (c Config) builder() (*document.Builder, error) {
	set, err := c.datasets()
	if err != nil {
		return nil, err
	}
	b := document.Builder{IndexPattern: c.indexPattern(), Datasets: set, JSONTarget: c.Decode.JSONTarget,
		MaxFuture: c.Decode.MaxTimestampFuture, MaxAge: c.Decode.MaxTimestampAge,
		TimestampField: c.Decode.TimestampField, TimestampFormat: c.Decode.TimestampFormat}
	if topics := config.SplitList(c.Decode.JSONTopics); len(topics) > 0 {
		b.JSON = map[string]bool{}
		for _, t := range topics {
			b.JSON[t] = true
		}
	}
	return document.NewBuilder(b), nil
}

// Registry is the transfer's metrics registry.
func (t *Transfer) Registry() *prometheus.Registry { return t.m.reg }

func (t *Transfer) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	if err := t.cfg.Kafka.Config.ApplySarama(sc); err != nil {
		return nil, err
	}
	sc.Version = sarama.V2_8_0_0
	sc.ClientID = "logtransfer"
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if t.cfg.Kafka.InitialOffset == "newest" {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sc.Consumer.Group.Session.Timeout = t.cfg.Kafka.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = t.cfg.Kafka.SessionTimeout / 3
	sc.Consumer.Group.Rebalance.Timeout = t.cfg.Kafka.RebalanceTimeout
	sc.Consumer.Return.Errors = true
	sc.Consumer.Fetch.Default = fetchPartitionBytes // of compressed batches: decoded, they can be ten times as many bytes
	// A batch larger than this fails with ErrMessageTooLarge (and is then read by the
	// rescue) instead of doubling the fetch size without end.
	sc.Consumer.Fetch.Max = int32(t.cfg.Kafka.MaxDecompressedBatchBytes)
	sc.Consumer.Fetch.MaxBytes = fetchMaxBytes
	sc.ChannelBufferSize = 1024
	sc.Consumer.MaxProcessingTime = time.Second
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Retry.Max = 10
	sc.Producer.MaxMessageBytes = t.cfg.Kafka.DLQMaxMessageBytes
	return sc, nil
}

// Run consumes until ctx ends. On a rebalance and at the end it stores what is
// pending, commits, and lets the partitions go.
func (t *Transfer) Run(ctx context.Context) error {
	defer t.sink.Close()
	defer t.closeDLQ()
	defer t.raw.close()
	brokers := config.SplitList(t.cfg.Kafka.Brokers)
	spec, err := ParseTopics(t.cfg.Kafka.Topics, t.cfg.Kafka.DLQTopic)
	if err != nil {
		return err
	}
	var group sarama.ConsumerGroup
	backoff := 250 * time.Millisecond
	for group == nil {
		g, err := sarama.NewConsumerGroup(brokers, t.cfg.Kafka.Group, t.sc)
		if err == nil {
			group = g
			break
		}
		t.log.Warn("kafka unreachable; retrying", "brokers", brokers, "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	if es, ok := t.sink.(*output.ES); ok && t.cfg.ES.RetentionDelete {
		rctx, stopRetention := context.WithCancel(ctx)
		retentionDone := make(chan struct{})
		defer func() { stopRetention(); <-retentionDone }()
		go func() {
			defer close(retentionDone)
			t.deleteExpired(rctx, es)
		}()
	}
	if t.cfg.Kibana.URL != "" {
		kctx, stopKibana := context.WithCancel(ctx)
		kibanaDone := make(chan struct{})
		defer func() { stopKibana(); <-kibanaDone }()
		go func() {
			defer close(kibanaDone)
			t.setupKibana(kctx)
		}()
	}
	h := &handler{t: t, probes: map[topicPartition]chan struct{}{}}
	errorsDone := make(chan struct{})
	defer func() { group.Close(); <-errorsDone }()
	go func() {
		defer close(errorsDone)
		for err := range group.Errors() {
			var ce *sarama.ConsumerError
			switch {
			case errors.As(err, &ce) && errors.Is(ce.Err, sarama.ErrMessageTooLarge):
				t.m.offsetsSkipped.Inc()
				t.log.Error("the Kafka client skipped an offset: its batch is larger than [kafka] max_decompressed_batch_bytes, or its last record runs past its end",
					"topic", ce.Topic, "partition", ce.Partition)
			case errors.As(err, &ce) && canProbe(ce.Err):
				t.log.Warn("consumer group", "err", err)
				h.probe(ce.Topic, ce.Partition)
			default:
				t.log.Warn("consumer group", "err", err)
			}
		}
	}()
	// With patterns, a watcher lists the topics every metadata_refresh and ends the
	// session when the list changes: the next one joins with the new list.
	w := &topicWatcher{topics: spec, interval: t.cfg.Kafka.MetadataRefresh}
	var topicsMu sync.Mutex
	var topics []string
	changed := make(chan struct{}, 1)
	if len(spec.Patterns) > 0 {
		wc := *t.sc
		wc.Metadata.AllowAutoTopicCreation = false // listing must not bring a deleted topic back
		cl, err := sarama.NewClient(brokers, &wc)
		if err != nil {
			return fmt.Errorf("kafka client for topic patterns: %w", err)
		}
		defer cl.Close()
		w.client = cl
		wctx, stopWatch := context.WithCancel(ctx)
		watchDone := make(chan struct{})
		defer func() { stopWatch(); <-watchDone }()
		go func() {
			defer close(watchDone)
			w.watch(wctx, func() []string {
				topicsMu.Lock()
				defer topicsMu.Unlock()
				return topics
			}, func(list []string) {
				t.log.Info("topics changed; rejoining the group", "topics", list)
				select {
				case changed <- struct{}{}:
				default:
				}
				h.restart()
			}, t.log.Warn)
		}()
	}
	t.log.Info("consuming", "group", t.cfg.Kafka.Group, "topics", t.cfg.Kafka.Topics, "output", t.cfg.Output.Type)
	for ctx.Err() == nil {
		list, err := w.list()
		if err != nil {
			t.log.Warn("cannot list topics; retrying", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		topicsMu.Lock()
		topics = list
		topicsMu.Unlock()
		if len(list) == 0 {
			t.log.Info("no topic matches the patterns yet", "topics", t.cfg.Kafka.Topics, "next_look_in", w.interval)
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		// A session ends with ctx, on a rebalance, when the topics change, or when a
		// partition skipped a batch sarama cannot decode: its next session starts past
		// the batch.
		sctx, endSession := context.WithCancel(ctx)
		h.setEndSession(endSession)
		select {
		case <-changed: // the list changed since it was read: read it again
			endSession()
			continue
		default:
		}
		err = group.Consume(sctx, list, h)
		endSession()
		if err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return nil
			}
			t.log.Warn("consume failed; rejoining", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
		}
	}
	return nil
}

// handler is the sarama.ConsumerGroupHandler: one ConsumeClaim per partition, and a
// committer per session.
type handler struct {
	t             *Transfer
	stopCommitter chan struct{}
	committerDone chan struct{}

	mu         sync.Mutex
	probes     map[topicPartition]chan struct{} // per claim: fetches of it failed
	endSession context.CancelFunc
}

type topicPartition struct {
	topic     string
	partition int32
}

// probe asks the claim of topic/partition, if any, to look for a batch sarama cannot
// decode (see Transfer.probe).
func (h *handler) probe(topic string, partition int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch := h.probes[topicPartition{topic, partition}]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (h *handler) setEndSession(f context.CancelFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endSession = f
}

// restart ends the session (its claims store what they have and commit), so that
// the next session fetches from the committed offsets.
func (h *handler) restart() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.endSession != nil {
		h.endSession()
	}
}

// watch registers the probe channel of a claim; the returned func removes it.
func (h *handler) watch(tp topicPartition) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.probes[tp] = ch
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.probes[tp] == ch {
			delete(h.probes, tp)
		}
	}
}

// Setup starts the session's committer: every commit interval it commits the offsets
// ConsumeClaim marked, which it marks only once the output acknowledged their records.
// Committing on a clock rather than after every bulk request keeps the bulk path free
// of a broker round trip (and its fsync); a crash re-delivers at most one interval of
// records, which the deterministic document ids overwrite.
func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.t.log.Info("partitions assigned", "claims", s.Claims(), "generation", s.GenerationID())
	h.stopCommitter, h.committerDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.committerDone)
		tick := time.NewTicker(h.t.cfg.Kafka.CommitInterval)
		defer tick.Stop()
		for {
			select {
			case <-h.stopCommitter:
				return
			case <-tick.C:
				s.Commit()
			}
		}
	}()
	return nil
}

// Cleanup runs after every ConsumeClaim returned (each stored what it could): it
// stops the committer and commits what is marked before the partitions go.
func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	close(h.stopCommitter)
	<-h.committerDone
	s.Commit()
	return nil
}

// deadBatchTimeout bounds how long a skipped batch's bytes may take to reach the
// dead-letter topic.
const deadBatchTimeout = 10 * time.Second

// finalGrace is how long the stores of a partition may go on after its session ended
// (rebalance or shutdown); what is not stored by then is not committed and goes to the
// partition's next owner.
const finalGrace = 5 * time.Second

// ConsumeClaim batches the partition's records by count and bytes, up to what is
// waiting (and at most the flush interval), and stores the batches, up to
// max_inflight at once, while the next batch fills: reading never waits for
// Elasticsearch unless that many batches are being stored and a full one is ready,
// and a batch that fills while one is stored goes at once rather than after it. The
// batches' offsets are marked for the committer in order, each once its batch and
// every earlier one are stored.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	t := h.t
	lag := t.m.lag.WithLabelValues(claim.Topic(), strconv.Itoa(int(claim.Partition())))
	storeCtx, cancelStore := context.WithCancel(context.Background())
	defer cancelStore()
	stopGrace := context.AfterFunc(sess.Context(), func() { time.AfterFunc(finalGrace, cancelStore) })
	defer stopGrace()

	// storing is a batch being stored: its last record and the store's outcome.
	type storing struct {
		last *sarama.ConsumerMessage
		done chan bool // capacity 1
	}
	var (
		batch    []*sarama.ConsumerMessage
		bytes    int
		inflight []storing // oldest first; settled in that order
	)
	send := func() {
		b := batch
		st := storing{last: b[len(b)-1], done: make(chan bool, 1)}
		inflight, batch, bytes = append(inflight, st), nil, 0
		go func() { st.done <- t.store(storeCtx, b) }()
	}
	// settle takes the oldest store's outcome, ok, and marks its offsets if it
	// stored them. After a failure nothing more is marked: the claim returns.
	settle := func(ok bool) bool {
		last := inflight[0].last
		inflight[0] = storing{}
		inflight = inflight[1:]
		if ok {
			sess.MarkMessage(last, "") // committed by the session's committer
			lag.Set(float64(max(0, claim.HighWaterMarkOffset()-last.Offset-1)))
		}
		return ok
	}
	// drain waits for every store in flight, in order; false if one failed.
	drain := func() bool {
		for len(inflight) > 0 {
			if !settle(<-inflight[0].done) {
				return false
			}
		}
		return true
	}
	finish := func() error {
		if !drain() {
			return nil
		}
		if len(batch) > 0 {
			send()
			drain()
		}
		return nil
	}

	tp := topicPartition{claim.Topic(), claim.Partition()}
	probe, unwatch := h.watch(tp)
	defer unwatch()
	next := claim.InitialOffset() // the next offset expected (negative: oldest or newest)
	var lastProbe time.Time

	msgs := claim.Messages()
	timer := time.NewTimer(t.cfg.Output.FlushInterval)
	defer timer.Stop()
	due := false // the flush interval passed with records waiting
	maxInflight := t.cfg.Output.MaxInflight
	for {
		full := len(batch) >= t.cfg.Output.BulkActions || bytes >= t.cfg.Output.BulkBytes
		in := msgs
		if full {
			in = nil // a full batch waits for a store in flight
		}
		var oldest chan bool // the outcome of the oldest store in flight
		if len(inflight) > 0 {
			oldest = inflight[0].done
		}
		select {
		case msg, ok := <-in:
			if !ok {
				return finish()
			}
			if next >= 0 && msg.Offset < next {
				continue // already read by a rescue
			}
			next = msg.Offset + 1
			t.m.consumed.Inc()
			batch = append(batch, msg)
			bytes += len(msg.Value) + 256
		case ok := <-oldest:
			if !settle(ok) {
				return nil
			}
		case <-timer.C:
			due = true
		case <-probe:
			if time.Since(lastProbe) < probeInterval {
				continue // sarama retries every 2 s; the next error asks again
			}
			lastProbe = time.Now()
			r, err := t.probe(sess.Context(), tp.topic, tp.partition, next)
			if err != nil {
				t.log.Warn("cannot read the partition to look for an undecodable batch", "topic", tp.topic, "partition", tp.partition, "offset", next, "err", err)
				continue
			}
			if !r.found {
				continue
			}
			// Store what is pending and what the rescue read, then mark the offset
			// past the skipped batch and end the session: the next one starts there.
			if !drain() {
				return nil
			}
			batch = append(batch, r.records...)
			t.m.consumed.Add(float64(len(r.records)))
			t.m.recordsRescued.Add(float64(len(r.records)))
			if len(batch) > 0 {
				send()
				if !drain() {
					return nil
				}
			}
			for _, b := range r.skipped {
				t.m.batchesSkipped.Inc()
				t.log.Error("skipped a record batch that cannot be decoded", "topic", tp.topic, "partition", tp.partition,
					"first_offset", b.BaseOffset, "last_offset", b.LastOffset, "bytes", b.Size, "err", b.Err)
				// Its bytes go to the dead-letter topic, for a look (truncated to fit), if
				// Kafka takes them soon: the skip is logged and counted already, and
				// must not wait on a dead-letter topic that cannot be written.
				dead := &sarama.ConsumerMessage{Topic: tp.topic, Partition: tp.partition, Offset: b.BaseOffset, Value: b.Raw, Timestamp: time.Now()}
				reason := fmt.Sprintf("undecodable record batch, offsets %d-%d: %v", b.BaseOffset, b.LastOffset, b.Err)
				dctx, cancel := context.WithTimeout(storeCtx, deadBatchTimeout)
				ok := t.deadLetter(dctx, dead, output.Result{Outcome: output.Reject, Error: reason})
				cancel()
				if !ok && storeCtx.Err() != nil {
					return nil
				}
				if !ok {
					t.log.Warn("the skipped batch's bytes could not be dead-lettered", "topic", tp.topic, "partition", tp.partition, "first_offset", b.BaseOffset)
				}
			}
			sess.MarkOffset(tp.topic, tp.partition, r.next, "")
			if err := t.raw.commit(sess.Context(), t.cfg.Kafka.Group, sess.GenerationID(), sess.MemberID(), tp.topic, tp.partition, r.next); err != nil {
				t.log.Warn("cannot commit past the skipped batch; the next session reads it again", "err", err)
			}
			next = r.next
			t.log.Info("resuming past the records read by the rescue", "topic", tp.topic, "partition", tp.partition, "offset", r.next, "rescued", len(r.records))
			h.restart()
		case <-sess.Context().Done():
			return finish()
		}
		// Send when the batch is full, when no more records are waiting (under load the
		// channel stays full and bulks are large; when traffic is light a record does
		// not wait for the flush interval), or when the interval passed.
		if len(inflight) < maxInflight && len(batch) > 0 && (len(batch) >= t.cfg.Output.BulkActions || bytes >= t.cfg.Output.BulkBytes || len(msgs) == 0 || due) {
			send()
			due = false
			timer.Reset(t.cfg.Output.FlushInterval)
		} else if due && len(batch) == 0 {
			due = false
			timer.Reset(t.cfg.Output.FlushInterval)
		}
	}
}

// store writes a batch until every record is stored or dead-lettered. It gives up
// (false) only when ctx ends; nothing is then committed for the batch.
func (t *Transfer) store(ctx context.Context, msgs []*sarama.ConsumerMessage) bool {
	docs := make([]document.Doc, len(msgs))
	for i, m := range msgs {
		docs[i] = t.builder.Build(m)
		if docs[i].TimestampReplaced {
			t.m.timestampsReplaced.Inc()
		}
		if docs[i].TimestampUnparsed {
			t.m.timestampsUnparsed.Inc()
		}
		if docs[i].ParseFailed {
			t.m.parseFailures.WithLabelValues(docs[i].Dataset).Inc()
		} else if docs[i].UnknownDataset {
			t.unknownDataset(docs[i].Dataset)
		}
	}
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	backoff := 100 * time.Millisecond
	for len(pending) > 0 {
		send := make([]document.Doc, len(pending))
		for i, j := range pending {
			send[i] = docs[j]
		}
		start := time.Now()
		results, err := t.sink.Write(ctx, send)
		t.m.bulkSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			t.m.bulkFailures.Inc()
			t.log.Warn("bulk request failed; retrying", "docs", len(send), "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return false
			}
			backoff = min(2*backoff, t.cfg.Output.BackoffMax)
			continue
		}
		var retry []int
		for i, r := range results {
			j := pending[i]
			switch r.Outcome {
			case output.Stored:
				t.m.indexed.Inc()
				t.m.indexedN.Add(1)
				if r.Existed {
					t.m.existed.Inc()
				}
			case output.Retry:
				retry = append(retry, j)
			case output.Reject:
				if !t.deadLetter(ctx, msgs[j], r) {
					return false
				}
			}
		}
		if len(retry) > 0 {
			t.m.retried.Add(float64(len(retry)))
			t.log.Warn("documents not accepted; retrying them", "docs", len(retry), "first_error", results[indexOf(pending, retry[0])].Error, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return false
			}
			backoff = min(2*backoff, t.cfg.Output.BackoffMax)
		}
		pending = retry
	}
	return true
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}

// deadLetter produces a rejected record to its dead-letter topic with the reason and
// its origin in headers, retrying until Kafka has it or ctx ends. A copy larger than
// [kafka] dlq_max_message_bytes is truncated to fit (header "truncated" gives the
// original value length); if the broker still refuses it as too large, the allowance
// is halved until only the headers are left, and then the record is logged and
// skipped: a dead letter never stalls its partition.
func (t *Transfer) deadLetter(ctx context.Context, m *sarama.ConsumerMessage, r output.Result) bool {
	topic := strings.ReplaceAll(t.cfg.Kafka.DLQTopic, "{topic}", m.Topic)
	budget := t.cfg.Kafka.DLQMaxMessageBytes
	backoff := 100 * time.Millisecond
	for {
		msg, truncated := dlqMessage(topic, m, r, budget)
		p, err := t.dlqProducer()
		if err == nil {
			if _, _, err = p.SendMessage(msg); err == nil {
				t.m.deadLettered.Inc()
				if truncated {
					t.m.dlqTruncated.Inc()
				}
				t.log.Warn("record dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "dlq", topic, "status", r.Status, "error", r.Error, "truncated", truncated)
				return true
			}
			var tooLarge sarama.ConfigurationError // sarama's own size check
			if errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.As(err, &tooLarge) {
				if budget <= dlqHeadersOnly {
					t.m.dlqDropped.Inc()
					t.log.Error("dead-letter copy refused as too large even truncated; record skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "dlq", topic, "err", err)
					return true
				}
				budget = max(budget/2, dlqHeadersOnly)
				continue
			}
		}
		t.log.Warn("dead-letter produce failed; retrying", "dlq", topic, "err", err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// dlqHeadersOnly is the smallest dead-letter allowance: room for logpipe's headers
// (each capped) and nothing of the record's key, value or own headers.
const dlqHeadersOnly = 2048

// dlqMaxError caps the reason kept in the "error" header (Elasticsearch may quote
// the document in it).
const dlqMaxError = 1024

// dlqMessage is the dead-letter copy of m, within budget bytes: the record's key,
// value and headers, and headers error, original_topic, original_partition and
// original_offset. When the copy does not fit, the value is cut first, then the key
// and the record's own headers are dropped; header "truncated" then holds the original
// value's length.
func dlqMessage(topic string, m *sarama.ConsumerMessage, r output.Result, budget int) (*sarama.ProducerMessage, bool) {
	reason := r.Error // a batch the transfer could not decode
	if r.Status != 0 {
		reason = fmt.Sprintf("%d %s", r.Status, r.Error)
	}
	if len(reason) > dlqMaxError {
		reason = strings.ToValidUTF8(reason[:dlqMaxError], "")
	}
	own := []sarama.RecordHeader{
		{Key: []byte(record.DLQError), Value: []byte(reason)},
		{Key: []byte(record.DLQOriginalTopic), Value: []byte(m.Topic)},
		{Key: []byte(record.DLQOriginalPartition), Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		{Key: []byte(record.DLQOriginalOffset), Value: strconv.AppendInt(nil, m.Offset, 10)},
	}
	// sarama counts a record as its key, value and headers plus up to 70 bytes of
	// record and batch framing (varints and the v2 batch header).
	const overhead = 128
	size := overhead + len(m.Key) + len(m.Value)
	var theirs []sarama.RecordHeader
	for _, h := range m.Headers {
		theirs = append(theirs, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		size += len(h.Key) + len(h.Value) + 10
	}
	for _, h := range own {
		size += len(h.Key) + len(h.Value) + 10
	}
	key, value := m.Key, m.Value
	truncated := size > budget
	if truncated {
		own = append(own, sarama.RecordHeader{Key: []byte(record.DLQTruncated), Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
		size += 40
		if cut := size - budget; cut <= len(value) {
			value = value[:len(value)-cut]
		} else {
			// Not even the key and the record's headers fit: keep logpipe's own.
			key, value, theirs = nil, nil, nil
		}
	}
	msg := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value), Timestamp: m.Timestamp,
		Headers: append(theirs, own...)}
	if key != nil {
		msg.Key = sarama.ByteEncoder(key)
	}
	return msg, truncated
}

func (t *Transfer) dlqProducer() (sarama.SyncProducer, error) {
	t.dlqMu.Lock()
	defer t.dlqMu.Unlock()
	if t.dlq == nil {
		p, err := sarama.NewSyncProducer(config.SplitList(t.cfg.Kafka.Brokers), t.sc)
		if err != nil {
			return nil, fmt.Errorf("dead-letter producer: %w", err)
		}
		t.dlq = p
	}
	return t.dlq, nil
}

func (t *Transfer) closeDLQ() {
	t.dlqMu.Lock()
	defer t.dlqMu.Unlock()
	if t.dlq != nil {
		t.dlq.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// retentionInterval is how often expired daily indices are looked for.
const retentionInterval = time.Hour

// deleteExpired deletes the transfer's daily indices older than [es] retention_days,
// at start and every retentionInterval, until ctx ends.
func (t *Transfer) deleteExpired(ctx context.Context, es *output.ES) {
	for {
		deleted, err := es.DeleteExpired(ctx, t.cfg.ES.Index, t.cfg.ES.RetentionDays, time.Now())
		t.m.indicesDeleted.Add(float64(len(deleted)))
		if len(deleted) > 0 {
			t.log.Info("deleted expired indices", "indices", deleted, "retention_days", t.cfg.ES.RetentionDays)
		}
		if err != nil && ctx.Err() == nil {
			t.log.Warn("cannot delete expired indices", "err", err)
		}
		if !sleep(ctx, retentionInterval) {
			return
		}
	}
}

// setupKibana creates the Kibana data view at start, retrying (Kibana often starts
// after the transfer) until it succeeds or ctx ends.
func (t *Transfer) setupKibana(ctx context.Context) {
	backoff := time.Second
	for {
		_, err := SetupKibana(ctx, t.cfg, t.log)
		if err == nil || ctx.Err() != nil {
			return
		}
		t.log.Warn("kibana setup failed; retrying", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, time.Minute)
	}
}
