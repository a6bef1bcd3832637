package logtransfer

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"github.com/logpipe/logpipe/internal/config"
	"github.com/logpipe/logpipe/internal/record"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReplayDLQ re-indexes the records of a dead-letter topic (empty: the dead-letter
// topic of every consumed topic that has one), up to its end when the replay starts,
// under their original _id: each record is rebuilt with its original topic,
// partition, offset, key, timestamp and headers, so the document is the one the
// transfer would have written. Progress is committed in the group "<group>-replay",
// so that a second run goes on where the first stopped. A record rejected again goes
// back to the dead-letter topic (after the end this replay reads); a truncated copy or
// an undecodable batch cannot be rebuilt and is skipped with a warning. It returns
// how many records were indexed.
func ReplayDLQ(ctx context.Context, cfg Config, topic string, log *slog.Logger) (int, error) {
	t, err := New(ctx, cfg, log)
	if err != nil {
		return 0, err
	}
	defer t.sink.Close()
	defer t.closeDLQ()
	secOpts, err := cfg.Kafka.Config.KgoOpts()
	if err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(append(secOpts, kgo.SeedBrokers(config.SplitList(cfg.Kafka.Brokers)...))...)
	if err != nil {
		return 0, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var topics []string
	if topic != "" {
		topics = []string{topic}
	} else {
		spec, err := ParseTopics(cfg.Kafka.Topics, cfg.Kafka.DLQTopic)
		if err != nil {
			return 0, err
		}
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			return 0, fmt.Errorf("list topics: %w", err)
		}
		for _, src := range spec.Resolve(listed.Names()) {
			if dlq := strings.ReplaceAll(cfg.Kafka.DLQTopic, "{topic}", src); listed.Has(dlq) {
				topics = append(topics, dlq)
			}
		}
	}
	if len(topics) == 0 {
		log.Info("no dead-letter topic to replay")
		return 0, nil
	}
	group := cfg.Kafka.Group + "-replay"
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("start offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	from := map[string]map[int32]kgo.Offset{}
	remaining := map[string]map[int32]int64{} // the end offset still to reach
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		start := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			start = s.Offset
		}
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.At > start {
			start = c.At
		}
		if start >= o.Offset {
			return
		}
		if from[o.Topic] == nil {
			from[o.Topic], remaining[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		from[o.Topic][o.Partition] = kgo.NewOffset().At(start)
		remaining[o.Topic][o.Partition] = o.Offset
	})
	if len(from) == 0 {
		log.Info("dead-letter topics already replayed", "topics", topics)
		return 0, nil
	}
	cons, err := kgo.NewClient(append(secOpts, kgo.SeedBrokers(config.SplitList(cfg.Kafka.Brokers)...), kgo.ConsumePartitions(from))...)
	if err != nil {
		return 0, fmt.Errorf("kafka: %w", err)
	}
	defer cons.Close()
	replayed, skipped := 0, 0
	for len(remaining) > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return replayed, ctx.Err()
		}
		var msgs []*sarama.ConsumerMessage
		next := kadm.Offsets{}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			next.AddOffset(r.Topic, r.Partition, r.Offset+1, -1)
			if r.Offset+1 >= end {
				delete(remaining[r.Topic], r.Partition)
				if len(remaining[r.Topic]) == 0 {
					delete(remaining, r.Topic)
				}
			}
			m, why := original(r)
			if m == nil {
				skipped++
				log.Warn("dead letter cannot be replayed; skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "why", why)
				return
			}
			msgs = append(msgs, m)
		})
		for _, e := range fs.Errors() {
			log.Warn("reading dead letters", "topic", e.Topic, "partition", e.Partition, "err", e.Err)
		}
		if len(msgs) > 0 {
			if !t.store(ctx, msgs) {
				return replayed, ctx.Err()
			}
			replayed += len(msgs)
		}
		if len(next) > 0 {
			if _, err := adm.CommitOffsets(ctx, group, next); err != nil {
				return replayed, fmt.Errorf("commit replay progress: %w", err)
			}
		}
	}
	log.Info("dead letters replayed", "topics", topics, "indexed", replayed, "skipped", skipped)
	return replayed, nil
}

// original rebuilds the record a dead letter is a copy of, or says why it cannot.
func original(r *kgo.Record) (*sarama.ConsumerMessage, string) {
	m := &sarama.ConsumerMessage{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Partition: -1, Offset: -1}
	for _, h := range r.Headers {
		switch h.Key {
		case record.DLQTruncated:
			return nil, "the copy is truncated"
		case record.DLQError:
			if strings.HasPrefix(string(h.Value), "undecodable record batch") {
				return nil, "an undecodable record batch, not a record"
			}
		case record.DLQOriginalTopic:
			m.Topic = string(h.Value)
		case record.DLQOriginalPartition:
			p, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil {
				return nil, "bad original_partition"
			}
			m.Partition = int32(p)
		case record.DLQOriginalOffset:
			o, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return nil, "bad original_offset"
			}
			m.Offset = o
		}
		if !record.IsDLQHeader(h.Key) {
			m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
	}
	if m.Topic == "" || m.Partition < 0 || m.Offset < 0 {
		return nil, "no original_topic, original_partition and original_offset headers"
	}
	return m, ""
}
