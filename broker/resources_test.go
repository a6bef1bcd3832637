package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/storage"
)

func createTopicsReq(validateOnly bool, topics map[string]int32, configs map[string]string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = validateOnly
	req.TimeoutMillis = 5000
	for name, n := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, n, 1
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func createTopicsCode(t *testing.T, r *rawConn, validateOnly bool, topics map[string]int32, configs map[string]string) (int16, string) {
	t.Helper()
	resp := r.roundTrip(createTopicsReq(validateOnly, topics, configs), 5).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 {
		t.Fatalf("%d topics answered", len(resp.Topics))
	}
	msg := ""
	if m := resp.Topics[0].ErrorMessage; m != nil {
		msg = *m
	}
	return resp.Topics[0].ErrorCode, msg
}

// TestPartitionLimitDefault: with the shipped defaults (max_partitions = 10,000, of
// which __consumer_offsets takes 50) a topic of 10,000 partitions is refused with
// POLICY_VIOLATION, validated or not, and nothing is created.
func TestPartitionLimitDefault(t *testing.T) {
	var dir string
	b := startBroker(t, func(c *broker.Config) { dir = c.Log.Dir })
	r := dialRaw(t, b.Addr())
	for _, validate := range []bool{true, false} {
		code, msg := createTopicsCode(t, r, validate, map[string]int32{"huge": 10000}, nil)
		if code != kerr.PolicyViolation.Code || !strings.Contains(msg, "max_partitions") {
			t.Fatalf("validate=%v: error %d %q, want POLICY_VIOLATION naming max_partitions", validate, code, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "huge-0")); !os.IsNotExist(err) {
		t.Fatalf("a refused topic left a directory: %v", err)
	}
	// Honest traffic: a normal topic is still created and serves.
	if code, msg := createTopicsCode(t, r, false, map[string]int32{"honest": 3}, nil); code != 0 {
		t.Fatalf("honest topic: %d %s", code, msg)
	}
}

// TestTopicAndPartitionLimits: max_topics and max_partitions hold against
// CreateTopics, auto-creation by Metadata and CreatePartitions, and the refusals
// are counted; the broker's own __consumer_offsets is never refused.
func TestTopicAndPartitionLimits(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) {
		c.Metrics.Listen = "127.0.0.1:0"
		c.Log.MaxTopics = 4 // __consumer_offsets + 3
		c.Log.MaxPartitions = 60
		c.Log.NumPartitions = 2
	})
	r := dialRaw(t, b.Addr())
	for i := 0; i < 3; i++ {
		if code, msg := createTopicsCode(t, r, false, map[string]int32{fmt.Sprintf("t%d", i): 1}, nil); code != 0 {
			t.Fatalf("topic %d: %d %s", i, code, msg)
		}
	}
	code, msg := createTopicsCode(t, r, false, map[string]int32{"t3": 1}, nil)
	if code != kerr.PolicyViolation.Code || !strings.Contains(msg, "max_topics") {
		t.Fatalf("fifth topic: %d %q, want POLICY_VIOLATION naming max_topics", code, msg)
	}
	// Auto-creation through Metadata is refused the same way.
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.AllowAutoTopicCreation = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("auto")
	mreq.Topics = append(mreq.Topics, mt)
	mresp := r.roundTrip(mreq, 9).(*kmsg.MetadataResponse)
	if mresp.Topics[0].ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("auto-create beyond max_topics: error %d", mresp.Topics[0].ErrorCode)
	}
	// Partitions: 50 + 3 = 53 of 60; growing t0 to 8 would make 60, to 9 is refused.
	grow := func(n int32, validate bool) int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.ValidateOnly = validate
		req.TimeoutMillis = 5000
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "t0", n
		req.Topics = append(req.Topics, rt)
		return r.roundTrip(req, 3).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
	}
	if code := grow(9, true); code != kerr.PolicyViolation.Code {
		t.Fatalf("validate growth beyond max_partitions: %d", code)
	}
	if code := grow(9, false); code != kerr.PolicyViolation.Code {
		t.Fatalf("growth beyond max_partitions: %d", code)
	}
	if code := grow(8, false); code != 0 {
		t.Fatalf("growth within max_partitions: %d", code)
	}
	// Honest traffic to the existing topics goes on.
	cl := newKgo(t, b.Addr(), kgo.DefaultProduceTopic("t1"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("still works")).FirstErr(); err != nil {
		t.Fatalf("honest produce: %v", err)
	}
	if got := consumeAll(t, b.Addr(), "t1", 1); string(got[0].Value) != "still works" {
		t.Fatalf("consumed %q", got[0].Value)
	}
	metrics := scrape(t, b.MetricsAddr())
	for _, want := range []string{"logpipe_broker_topics_refused_total 2", "logpipe_broker_partitions_refused_total 1"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestSegmentConfigMinimum: segment.bytes below 1 MiB and segment.ms below one
// minute are refused with INVALID_CONFIG by CreateTopics and by broker.ini.
func TestSegmentConfigMinimum(t *testing.T) {
	b := startBroker(t, nil)
	r := dialRaw(t, b.Addr())
	for _, c := range []struct {
		name, value string
		ok          bool
	}{
		{"segment.bytes", "14", false},
		{"segment.bytes", "1048575", false},
		{"segment.bytes", "1048576", true},
		{"segment.ms", "1", false},
		{"segment.ms", "59999", false},
		{"segment.ms", "60000", true},
	} {
		topic := fmt.Sprintf("cfg-%s-%s", c.name, c.value)
		code, msg := createTopicsCode(t, r, false, map[string]int32{topic: 1}, map[string]string{c.name: c.value})
		switch {
		case c.ok && code != 0:
			t.Errorf("%s=%s: refused %d %s", c.name, c.value, code, msg)
		case !c.ok && (code != kerr.InvalidConfig.Code || !strings.Contains(msg, c.name)):
			t.Errorf("%s=%s: error %d %q, want INVALID_CONFIG naming it", c.name, c.value, code, msg)
		}
	}
	ini := filepath.Join(t.TempDir(), "broker.ini")
	os.WriteFile(ini, []byte("[log]\nsegment_bytes = 14\n"), 0o644)
	if _, err := broker.LoadConfig(ini); err == nil || !strings.Contains(err.Error(), "segment.bytes") {
		t.Fatalf("ini segment_bytes = 14: %v", err)
	}
}

// TestInternalTopicsRefused: clients cannot produce to, delete or grow
// __consumer_offsets (or any "__" topic), nor have Metadata auto-create one.
func TestInternalTopicsRefused(t *testing.T) {
	b := startBroker(t, nil)
	r := dialRaw(t, b.Addr())
	const internal = "__consumer_offsets"
	presp := r.roundTrip(produceReq(internal, -1, batch(1, 0)), 8).(*kmsg.ProduceResponse)
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to %s: error %d, want INVALID_TOPIC_EXCEPTION", internal, code)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TimeoutMillis = 5000
	del.TopicNames = []string{internal}
	if code := r.roundTrip(del, 4).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("delete %s: error %d, want INVALID_REQUEST", internal, code)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.TimeoutMillis = 5000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = internal, 60
	cp.Topics = append(cp.Topics, rt)
	if code := r.roundTrip(cp, 3).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("grow %s: error %d, want INVALID_REQUEST", internal, code)
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(internal)
	mreq.Topics = append(mreq.Topics, mt)
	if n := len(r.roundTrip(mreq, 9).(*kmsg.MetadataResponse).Topics[0].Partitions); n != 50 {
		t.Fatalf("%s has %d partitions", internal, n)
	}
	mreq = kmsg.NewPtrMetadataRequest()
	mreq.AllowAutoTopicCreation = true
	mt = kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("__sneaky")
	mreq.Topics = append(mreq.Topics, mt)
	if code := r.roundTrip(mreq, 9).(*kmsg.MetadataResponse).Topics[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create __sneaky: error %d", code)
	}
	// A real client gets the error too, and honest topics keep working.
	cl := newKgo(t, b.Addr(), kgo.RecordRetries(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: internal, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("kgo produce to %s: %v", internal, err)
	}
	createTopic(t, b.Addr(), "honest", 1, nil)
	honest := newKgo(t, b.Addr())
	if err := honest.ProduceSync(ctx, &kgo.Record{Topic: "honest", Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatalf("honest produce: %v", err)
	}
}

// TestOffsetCommitV0LiveGroup: an OffsetCommit v0 (no generation, no member) cannot
// move the offsets of a group that has members; it still works for an empty group.
func TestOffsetCommitV0LiveGroup(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) { c.Group.InitialRebalanceDelay = 0 })
	createTopic(t, b.Addr(), "lines", 1, nil)
	cl := newKgo(t, b.Addr(), kgo.DefaultProduceTopic("lines"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	member := newKgo(t, b.Addr(), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("lines"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	var got int
	for got < 10 {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 10", got)
		}
		got += len(fs.Records())
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	commitV0 := func(group string, offset int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = group
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "lines"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return dialRaw(t, b.Addr()).roundTrip(req, 0).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := commitV0("live", 0); code != kerr.UnknownMemberID.Code {
		t.Fatalf("v0 commit to a live group: error %d, want UNKNOWN_MEMBER_ID", code)
	}
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("lines", 0); o.At != 10 {
		t.Fatalf("live group's offset moved to %d, want 10", o.At)
	}
	// A group without members (a simple consumer's) still takes v0 commits.
	if code := commitV0("simple", 7); code != 0 {
		t.Fatalf("v0 commit to an empty group: %d", code)
	}
	offs, err = adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("lines", 0); o.At != 7 {
		t.Fatalf("simple group's offset %d, want 7", o.At)
	}
}

// TestListOffsetsDuplicates: a ListOffsets naming one partition many times is
// answered INVALID_REQUEST for it (each place) without a look-up per entry; other
// partitions of the same request are answered normally.
func TestListOffsetsDuplicates(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "ts", 2, nil)
	cl := newKgo(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ts", Partition: 0, Value: []byte("a")}, &kgo.Record{Topic: "ts", Partition: 1, Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const dups = 50000 // 16 bytes each: within max_other_request_bytes
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "ts"
	for i := 0; i < dups; i++ {
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp = 0, 1 // a timestamp look-up reads a batch
		rt.Partitions = append(rt.Partitions, p)
	}
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.Timestamp = 1, -1
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp := dialRaw(t, b.Addr()).roundTrip(req, 4).(*kmsg.ListOffsetsResponse)
	took := time.Since(start)
	ps := resp.Topics[0].Partitions
	if len(ps) != dups+1 {
		t.Fatalf("%d answers for %d entries", len(ps), dups+1)
	}
	for i, p := range ps[:dups] {
		if p.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate %d: error %d, want INVALID_REQUEST", i, p.ErrorCode)
		}
	}
	if last := ps[dups]; last.ErrorCode != 0 || last.Offset != 1 {
		t.Fatalf("the other partition: %+v", last)
	}
	t.Logf("%d duplicate entries answered in %v", dups, took)
}

// TestManySegmentsServe is the descriptor-exhaustion input through the whole
// broker: a partition of 3,000 one-batch segments (what segment.bytes=14 left
// behind) is recovered and served to a kgo consumer, and honest produce goes on,
// while the broker's descriptors stay within max_open_segments plus its
// connections.
func TestManySegmentsServe(t *testing.T) {
	const segments = 3000
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Log.MaxOpenSegments = 64
	before := countFDs(t)
	// Lay out the hostile partition with the store, one batch per segment.
	st, err := storage.Open(storage.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tc := storage.DefaultTopicConfig()
	tc.SegmentBytes = 14
	if _, err := st.CreateTopic("hostile", 1, tc); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	layoutSegments(t, filepath.Join(dir, "hostile-0"), segments)

	b, err := broker.Start(cfg, testLogger())
	if err != nil {
		t.Fatalf("start over %d segments: %v", segments, err)
	}
	t.Cleanup(func() { b.Close() })
	peak := countFDs(t) - before
	recs := consumeAll(t, b.Addr(), "hostile", segments)
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.Offset)
		}
	}
	peak = max(peak, countFDs(t)-before)
	cl := newKgo(t, b.Addr(), kgo.DefaultProduceTopic("hostile"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("honest")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	peak = max(peak, countFDs(t)-before)
	// 64 cached segments, ~55 active segments (__consumer_offsets' 50 among them),
	// the clients' connections, the runtime's own.
	if bound := 64 + 60 + 40; peak > bound {
		t.Fatalf("%d descriptors open serving %d segments, bound %d", peak, segments, bound)
	}
	t.Logf("%d segments served with at most %d descriptors above the start", segments, peak)
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// layoutSegments replaces the data of partition dir with n segments of one batch
// each, in Kafka's layout (log, empty offset index, one time-index entry), as a
// topic rolled at every batch leaves them. Written directly: rolling through the
// store fsyncs several files per segment.
func layoutSegments(t testing.TB, dir string, n int) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range old {
		os.Remove(f)
	}
	b := batch(1, 0)
	ts := binary.BigEndian.Uint64(b[35:]) // max timestamp
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(b, uint64(i)) // base offset, outside the CRC
		name := filepath.Join(dir, fmt.Sprintf("%020d", i))
		if err := os.WriteFile(name+".log", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if i == n-1 {
			break // the active segment: its indexes are rebuilt at start
		}
		te := binary.BigEndian.AppendUint64(nil, ts)
		te = binary.BigEndian.AppendUint32(te, 0)
		os.WriteFile(name+".index", nil, 0o644)
		if err := os.WriteFile(name+".timeindex", te, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scrape returns the text of /metrics.
func scrape(t testing.TB, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
