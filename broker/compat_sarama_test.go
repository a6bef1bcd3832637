package broker_test

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

type saramaMsg struct {
	partition int32
	offset    int64
	key       []byte
	value     []byte
	headers   map[string]string
}

func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "logpipe-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.Flush.MaxMessages = 100
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

func saramaHeaders(i int) []sarama.RecordHeader {
	return []sarama.RecordHeader{
		{Key: []byte("host"), Value: []byte("web-1")},
		{Key: []byte("offset"), Value: []byte(fmt.Sprint(i * 100))},
	}
}

// saramaConsume reads every partition of topic from the oldest offset until n
// messages arrived.
func saramaConsume(t *testing.T, addr, topic string, n int) []saramaMsg {
	t.Helper()
	cfg := saramaConfig(sarama.V2_8_0_0)
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan saramaMsg, n)
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				h := map[string]string{}
				for _, rh := range m.Headers {
					h[string(rh.Key)] = string(rh.Value)
				}
				msgs <- saramaMsg{m.Partition, m.Offset, m.Key, m.Value, h}
			}
		}()
	}
	defer func() {
		for _, pc := range pcs {
			pc.Close()
		}
	}()
	var out []saramaMsg
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case m := <-msgs:
			out = append(out, m)
		case <-timeout:
			t.Fatalf("consumed %d of %d messages", len(out), n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].partition != out[j].partition {
			return out[i].partition < out[j].partition
		}
		return out[i].offset < out[j].offset
	})
	return out
}

// checkSarama compares what was consumed with what was produced: every message
// once, byte-exact, at the offset the producer was told (when it was told).
func checkSarama(t *testing.T, got []saramaMsg, sent map[string]saramaMsg, offsetsKnown bool) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("consumed %d messages, produced %d", len(got), len(sent))
	}
	next := map[int32]int64{}
	for _, m := range got {
		want, ok := sent[string(m.value)]
		if !ok {
			t.Fatalf("unexpected message %q", m.value)
		}
		delete(sent, string(m.value))
		if !bytes.Equal(m.key, want.key) || m.headers["host"] != "web-1" || m.headers["offset"] != want.headers["offset"] {
			t.Fatalf("message %q: key %q headers %v, want key %q offset header %s", m.value, m.key, m.headers, want.key, want.headers["offset"])
		}
		if offsetsKnown && (m.partition != want.partition || m.offset != want.offset) {
			t.Fatalf("message %q at %d/%d, producer was told %d/%d", m.value, m.partition, m.offset, want.partition, want.offset)
		}
		if m.offset != next[m.partition] {
			t.Fatalf("partition %d: offset %d follows %d", m.partition, m.offset, next[m.partition]-1)
		}
		next[m.partition]++
	}
}

func TestSaramaSyncProducer(t *testing.T) {
	b := startBroker(t, nil)
	acks := map[string]sarama.RequiredAcks{"acks0": sarama.NoResponse, "acks1": sarama.WaitForLocal, "acksall": sarama.WaitForAll}
	codecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}
	versions := map[string]sarama.KafkaVersion{"v2.8": sarama.V2_8_0_0, "v3.6": sarama.V3_6_0_0}
	const n = 300
	for vname, version := range versions {
		for aname, ack := range acks {
			for cname, codec := range codecs {
				if vname != "v2.8" && cname != "zstd" {
					continue // the version matrix runs one codec
				}
				t.Run(vname+"/"+aname+"/"+cname, func(t *testing.T) {
					t.Parallel()
					topic := fmt.Sprintf("sarama-sync-%s-%s-%s", vname, aname, cname)
					cfg := saramaConfig(version)
					cfg.Producer.RequiredAcks = ack
					cfg.Producer.Compression = codec
					p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
					if err != nil {
						t.Fatal(err)
					}
					sent := map[string]saramaMsg{}
					var batch []*sarama.ProducerMessage
					for i := range n {
						v := testValue(topic, i)
						m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i%7)), Value: sarama.ByteEncoder(v), Headers: saramaHeaders(i)}
						batch = append(batch, m)
					}
					// Half one by one, half as a batch.
					for _, m := range batch[:n/2] {
						if _, _, err := p.SendMessage(m); err != nil {
							t.Fatal(err)
						}
					}
					if err := p.SendMessages(batch[n/2:]); err != nil {
						t.Fatal(err)
					}
					for i, m := range batch {
						sent[string(testValue(topic, i))] = saramaMsg{partition: m.Partition, offset: m.Offset,
							key: []byte(fmt.Sprintf("key-%d", i%7)), headers: map[string]string{"offset": fmt.Sprint(i * 100)}}
					}
					p.Close()
					got := saramaConsume(t, b.Addr(), topic, n)
					checkSarama(t, got, sent, ack != sarama.NoResponse)
				})
			}
		}
	}
}

func TestSaramaAsyncProducer(t *testing.T) {
	b := startBroker(t, nil)
	for _, ack := range []sarama.RequiredAcks{sarama.NoResponse, sarama.WaitForLocal, sarama.WaitForAll} {
		t.Run(fmt.Sprint("acks", ack), func(t *testing.T) {
			t.Parallel()
			topic := fmt.Sprintf("sarama-async-%d", ack)
			cfg := saramaConfig(sarama.V2_8_0_0)
			cfg.Producer.RequiredAcks = ack
			cfg.Producer.Compression = sarama.CompressionSnappy
			p, err := sarama.NewAsyncProducer([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000
			sent := map[string]saramaMsg{}
			var mu sync.Mutex
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < n; i++ {
					select {
					case m := <-p.Successes():
						v, _ := m.Value.Encode()
						mu.Lock()
						sent[string(v)] = saramaMsg{partition: m.Partition, offset: m.Offset, key: []byte(fmt.Sprint(m.Metadata)),
							headers: map[string]string{"offset": string(m.Headers[1].Value)}}
						mu.Unlock()
					case err := <-p.Errors():
						t.Errorf("produce: %v", err)
					}
				}
			}()
			for i := range n {
				p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.ByteEncoder(testValue(topic, i)), Headers: saramaHeaders(i), Metadata: i}
			}
			<-done
			p.Close()
			got := saramaConsume(t, b.Addr(), topic, n)
			checkSarama(t, got, sent, ack != sarama.NoResponse)
		})
	}
}

func TestSaramaIdempotentProducer(t *testing.T) {
	b := startBroker(t, nil)
	topic := "sarama-idempotent"
	cfg := saramaConfig(sarama.V2_8_0_0)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Compression = sarama.CompressionLZ4
	p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.ByteEncoder(testValue(topic, i)), Headers: saramaHeaders(i)})
	}
	for i := 0; i < n; i += 100 {
		if err := p.SendMessages(msgs[i : i+100]); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	sent := map[string]saramaMsg{}
	for i, m := range msgs {
		sent[string(testValue(topic, i))] = saramaMsg{partition: m.Partition, offset: m.Offset, key: []byte(fmt.Sprint(i)), headers: map[string]string{"offset": fmt.Sprint(i * 100)}}
	}
	got := saramaConsume(t, b.Addr(), topic, n)
	checkSarama(t, got, sent, true)
}
