package logtransfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/logtransfer/kafkabatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// setClientLimits sets sarama's process-wide bounds from cfg: a compressed batch may
// not inflate past [kafka] max_decompressed_batch_bytes (sarama's default is no bound:
// a 79-byte zstd frame declaring 60 GiB would be allocated), and no response may be
// larger than what a fetch asks for plus one such batch. sarama keeps them in package
// variables, so they are the process's: a process runs one transfer, and New sets them
// (only when they differ, so that tests starting several transfers with the same
// configuration do not write them while another transfer's consumer reads them).
func setClientLimits(cfg Config) {
	if v := int32(cfg.Kafka.MaxDecompressedBatchBytes); sarama.MaxDecompressedBatchSize != v {
		sarama.MaxDecompressedBatchSize = v
	}
	// A fetch asks for at most fetchMaxBytes; Kafka may add one batch of up to the
	// broker's max message size beyond it.
	if v := int32(fetchMaxBytes + cfg.Kafka.MaxDecompressedBatchBytes + 1<<20); sarama.MaxResponseSize != v {
		sarama.MaxResponseSize = v
	}
}

const (
	// fetchPartitionBytes is what one fetch asks of each partition (sarama's
	// Consumer.Fetch.Default), and the window a rescue reads at a time.
	fetchPartitionBytes = 256 << 10
	// fetchMaxBytes is what one fetch asks in all (sarama's Consumer.Fetch.MaxBytes).
	fetchMaxBytes = 32 << 20
	// rescueWindows is how many windows a probe reads looking for the bad batch.
	rescueWindows = 4
	// probeInterval spaces the probes of one partition.
	probeInterval = time.Second
)

// rawFetcher reads the raw record batches of one partition with franz-go, for the
// partitions whose fetch sarama cannot decode. Its client is made on first use and
// closed with the transfer.
type rawFetcher struct {
	brokers  []string
	maxBytes int32     // the largest response read
	opts     []kgo.Opt // TLS and SASL, as the transfer's [kafka] section says

	mu sync.Mutex
	cl *kgo.Client
}

func (f *rawFetcher) client() (*kgo.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cl == nil {
		opts := append([]kgo.Opt{kgo.SeedBrokers(f.brokers...), kgo.ClientID("logtransfer-rescue"),
			kgo.MaxVersions(kversion.V2_8_0()), kgo.BrokerMaxReadBytes(f.maxBytes),
			// Not used (the rescue sends its own fetches) but checked against the above.
			kgo.FetchMaxBytes(fetchPartitionBytes), kgo.FetchMaxPartitionBytes(fetchPartitionBytes)}, f.opts...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("rescue client: %w", err)
		}
		f.cl = cl
	}
	return f.cl, nil
}

func (f *rawFetcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cl != nil {
		f.cl.Close()
		f.cl = nil
	}
}

// leader is the broker id leading topic/partition.
func (f *rawFetcher) leader(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == partition {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return 0, fmt.Errorf("metadata of %s/%d: %w", topic, partition, err)
				}
				return p.Leader, nil
			}
		}
	}
	return 0, fmt.Errorf("metadata of %s: no partition %d", topic, partition)
}

// offsetAt resolves sarama.OffsetOldest / OffsetNewest to an offset.
func (f *rawFetcher) offsetAt(ctx context.Context, cl *kgo.Client, leader int32, topic string, partition int32, which int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, which // -2 earliest, -1 latest, as sarama's
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return 0, fmt.Errorf("list offsets of %s/%d: %w", topic, partition, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("list offsets of %s/%d: malformed response", topic, partition)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return 0, fmt.Errorf("list offsets of %s/%d: %w", topic, partition, err)
	}
	return p.Offset, nil
}

// fetch reads the record bytes of topic/partition from offset, at most window bytes
// (and at least one whole batch, as Kafka answers).
func (f *rawFetcher) fetch(ctx context.Context, cl *kgo.Client, leader int32, topic string, partition int32, offset int64, window int32) ([]byte, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = window
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, window
	rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == topic && p.Partition == partition {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
				}
				return p.RecordBatches, nil
			}
		}
	}
	return nil, fmt.Errorf("fetch %s/%d at %d: partition missing from the response", topic, partition, offset)
}

// rescue is the outcome of a probe of a partition whose fetches fail.
type rescue struct {
	found   bool                      // a batch that cannot be decoded was found
	records []*sarama.ConsumerMessage // the good records before it (or up to next)
	next    int64                     // where consuming resumes: past the bad batch, or past records
	skipped []kafkabatch.Batch        // the batches skipped
}

// probe reads topic/partition from offset with the transfer's own decoder, a window
// at a time, looking for a batch that cannot be decoded. When it finds one, it returns
// the good records before it and the offset after it; it keeps at most about
// max_decompressed_batch_bytes of records: past that, next stops at the last good
// batch kept, and the next probe goes on from there. When every batch read decodes,
// found is false: the failure was elsewhere (another partition of the same fetch, or
// the network).
func (t *Transfer) probe(ctx context.Context, topic string, partition int32, offset int64) (rescue, error) {
	cl, err := t.raw.client()
	if err != nil {
		return rescue{}, err
	}
	leader, err := t.raw.leader(ctx, cl, topic, partition)
	if err != nil {
		return rescue{}, err
	}
	if offset < 0 {
		if offset, err = t.raw.offsetAt(ctx, cl, leader, topic, partition, offset); err != nil {
			return rescue{}, err
		}
	}
	r := rescue{next: offset}
	budget := t.cfg.Kafka.MaxDecompressedBatchBytes
	full := false // the records kept reached the budget: keep validating, keep no more
	at := offset
	for w := 0; w < rescueWindows; w++ {
		raw, err := t.raw.fetch(ctx, cl, leader, topic, partition, at, fetchPartitionBytes)
		if err != nil {
			return rescue{}, err
		}
		batches := kafkabatch.Decode(raw, t.cfg.Kafka.MaxDecompressedBatchBytes)
		if len(batches) == 0 {
			return rescue{}, nil // at the end of the partition: nothing bad
		}
		for _, b := range batches {
			if b.LastOffset < at {
				continue // before the offset asked (the batch holding it starts earlier)
			}
			if b.Legacy {
				// Not judged here: never skip what sarama may read. The fetch stays
				// stuck only if the bad batch is itself a legacy message set.
				return rescue{}, fmt.Errorf("legacy message set at offset %d: not decoded by the rescue", b.BaseOffset)
			}
			if b.Err != nil {
				r.found = true
				if !full { // else the next probe, from r.next, skips it
					r.skipped = append(r.skipped, b)
					r.next = b.LastOffset + 1
				}
				return r, nil
			}
			at = b.LastOffset + 1
			if full {
				continue
			}
			for _, rec := range b.Records {
				if rec.Offset < offset || b.Control {
					continue
				}
				m := &sarama.ConsumerMessage{Topic: topic, Partition: partition, Offset: rec.Offset,
					Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp, BlockTimestamp: rec.Timestamp}
				for _, h := range rec.Headers {
					m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
				}
				r.records = append(r.records, m)
				budget -= len(rec.Key) + len(rec.Value) + 256
			}
			r.next = b.LastOffset + 1
			full = budget <= 0
		}
	}
	return rescue{}, nil
}

// canProbe reports whether a consumer error may come from a fetch sarama could not
// decode (a decoding or decompression error). An error code from the broker does
// not, nor does ErrMessageTooLarge: sarama reports it for a batch it could not get
// whole within Consumer.Fetch.Max and has already moved one offset past it.
func canProbe(err error) bool {
	var kerr sarama.KError
	var nerr net.Error
	switch {
	case errors.As(err, &kerr), errors.Is(err, sarama.ErrMessageTooLarge):
		return false
	case errors.Is(err, sarama.ErrNotConnected), errors.Is(err, sarama.ErrOutOfBrokers), errors.Is(err, sarama.ErrClosedClient),
		errors.Is(err, sarama.ErrShuttingDown), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.As(err, &nerr):
		return false // the network: nothing to find in the records
	}
	return true
}

// newRawFetcher is the transfer's rescue reader.
func newRawFetcher(cfg Config, opts ...kgo.Opt) *rawFetcher {
	return &rawFetcher{brokers: config.SplitList(cfg.Kafka.Brokers), opts: opts,
		maxBytes: int32(fetchPartitionBytes + cfg.Kafka.MaxDecompressedBatchBytes + 1<<20)}
}

// commit commits offset for topic/partition in the group, as the session's member,
// and waits for the answer: sarama's commit is one attempt on a connection that the
// failing fetches keep closing, so a skip is committed here, retrying a few times.
func (f *rawFetcher) commit(ctx context.Context, group string, generation int32, member, topic string, partition int32, offset int64) error {
	cl, err := f.client()
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 && !sleep(ctx, 200*time.Millisecond) {
			break
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, generation, member
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = partition, offset, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && (len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1) {
			err = errors.New("malformed response")
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("commit %s/%d at %d for group %s: %w", topic, partition, offset, group, last)
}
