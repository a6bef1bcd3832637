package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
)

// kgoProduceAndCheck produces n records with cl, consumes them back and checks
// every one byte-exact at the offset the producer was told.
func kgoProduceAndCheck(t *testing.T, addr string, cl *kgo.Client, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(map[string]*kgo.Record, n)
	var recs []*kgo.Record
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("k", i%13)), Value: testValue(topic, i),
			Headers: []kgo.RecordHeader{{Key: "host", Value: []byte("web-1")}, {Key: "i", Value: []byte(fmt.Sprint(i))}}}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, r := range recs {
		sent[string(r.Value)] = r
	}
	got := consumeAll(t, addr, topic, n)
	if len(got) != n {
		t.Fatalf("consumed %d records, produced %d", len(got), n)
	}
	for _, r := range got {
		want := sent[string(r.Value)]
		if want == nil {
			t.Fatalf("unexpected or duplicate record %q", r.Value)
		}
		delete(sent, string(r.Value))
		if r.Partition != want.Partition || r.Offset != want.Offset || !bytes.Equal(r.Key, want.Key) ||
			len(r.Headers) != 2 || string(r.Headers[1].Value) != string(want.Headers[1].Value) ||
			r.Timestamp.UnixMilli() != want.Timestamp.UnixMilli() {
			t.Fatalf("record %q: got %d/%d key %q headers %v ts %v, want %d/%d key %q ts %v", r.Value, r.Partition, r.Offset, r.Key, r.Headers, r.Timestamp,
				want.Partition, want.Offset, want.Key, want.Timestamp)
		}
	}
}

func TestKgoDefaultIdempotentProducer(t *testing.T) {
	b := startBroker(t, nil)
	cl := newKgo(t, b.Addr(), kgo.DefaultProduceTopic("kgo-default"), kgo.AllowAutoTopicCreation())
	kgoProduceAndCheck(t, b.Addr(), cl, "kgo-default", 5000)
	// The producer really was idempotent: it got a producer id.
	id, epoch, err := cl.ProducerID(context.Background())
	if err != nil || id < 0 || epoch != 0 {
		t.Fatalf("producer id %d epoch %d err %v", id, epoch, err)
	}
}

func TestKgoAcks1(t *testing.T) {
	b := startBroker(t, nil)
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cl := newKgo(t, b.Addr(), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()),
				kgo.ProducerBatchCompression(codec), kgo.AllowAutoTopicCreation())
			kgoProduceAndCheck(t, b.Addr(), cl, "kgo-acks1-"+name, 2000)
		})
	}
}

func TestKadm(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) { c.Log.AutoCreateTopics = false })
	cl := newKgo(t, b.Addr())
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	retention := "3600000"
	resp, err := adm.CreateTopic(ctx, 4, 1, map[string]*string{"retention.ms": &retention}, "admin-topic")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	if resp.ID == [16]byte{} {
		t.Fatal("no topic id")
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "admin-topic"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 3: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", err)
	}
	bad := "nope"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &bad}, "badcfg"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	vo, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "validate-only")
	if err != nil || vo.Error() != nil {
		t.Fatalf("validate only: %v %v", err, vo.Error())
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["validate-only"]; ok {
		t.Fatal("validate-only created the topic")
	}
	if td := md.Topics["admin-topic"]; len(td.Partitions) != 4 || td.Partitions[0].Leader != 0 || len(md.Brokers) != 1 || md.Cluster != "logpipe" {
		t.Fatalf("metadata: %+v", md)
	}

	// Describe configs: the one set, the rest defaults.
	rcs, err := adm.DescribeTopicConfigs(ctx, "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("admin-topic", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	found := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		found[c.Key] = c
	}
	if c := found["retention.ms"]; c.MaybeValue() != "3600000" || c.Source == 5 {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c, ok := found["segment.bytes"]; !ok || c.Source != 5 {
		t.Fatalf("segment.bytes: %+v", c)
	}
	brs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(brs) != 1 || brs[0].Err != nil || len(brs[0].Configs) == 0 {
		t.Fatalf("broker configs: %v %+v", err, brs)
	}

	// Produce with explicit timestamps, then list offsets.
	base := time.UnixMilli(1_700_000_000_000)
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Topic: "admin-topic", Partition: 2, Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	pcl := newKgo(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(10))
	for _, r := range recs {
		pcl.Produce(ctx, r, nil) // several batches
	}
	if err := pcl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("admin-topic", 2); o.Offset != 100 {
		t.Fatalf("end offset %+v", o)
	}
	if o, _ := ends.Lookup("admin-topic", 1); o.Offset != 0 {
		t.Fatalf("end offset of empty partition %+v", o)
	}
	starts, err := adm.ListStartOffsets(ctx, "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("admin-topic", 2); o.Offset != 0 {
		t.Fatalf("start offset %+v", o)
	}
	at, err := adm.ListOffsetsAfterMilli(ctx, base.Add(42500*time.Millisecond).UnixMilli(), "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := at.Lookup("admin-topic", 2); o.Offset != 43 || o.Timestamp < base.Add(43*time.Second).UnixMilli() {
		t.Fatalf("offset after 42.5s: %+v", o)
	}

	// Grow, delete.
	if _, err := adm.CreatePartitions(ctx, 2, "admin-topic"); err != nil {
		t.Fatal(err)
	}
	if r, err := adm.UpdatePartitions(ctx, 3, "admin-topic"); err == nil && r.Error() == nil {
		t.Fatal("shrinking partitions succeeded")
	}
	md, _ = adm.Metadata(ctx, "admin-topic")
	if n := len(md.Topics["admin-topic"].Partitions); n != 6 {
		t.Fatalf("%d partitions after adding 2, want 6", n)
	}
	if r, err := adm.DeleteTopic(ctx, "admin-topic"); err != nil || r.Err != nil {
		t.Fatalf("delete: %v %v", err, r.Err)
	}
	// A fresh client: kgo caches metadata answers for a few seconds.
	md, _ = kadm.NewClient(newKgo(t, b.Addr())).Metadata(ctx, "admin-topic")
	if !errors.Is(md.Topics["admin-topic"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("after delete: %+v", md.Topics["admin-topic"])
	}
}
