package group

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

func TestJavaHashCodePartition(t *testing.T) {
	// Values of Java's "...".hashCode().
	for _, tc := range []struct {
		s    string
		hash int32
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"Aa", 2112},
		{"BB", 2112},
		{"logtransfer", -1338714321},
		{"polygenelubricants", -2147483648}, // Integer.MIN_VALUE
		{"é", 233},
		{"😀", 1772899}, // U+1F600 = surrogates D83D DE00: 0xD83D*31 + 0xDE00
		{"grüße-😀-x", javaHashUTF16([]uint16{'g', 'r', 0xfc, 0xdf, 'e', '-', 0xd83d, 0xde00, '-', 'x'})},
	} {
		if got := javaStringHashCode(tc.s); got != tc.hash {
			t.Errorf("hashCode(%q) = %d, want %d", tc.s, got, tc.hash)
		}
	}
	for _, tc := range []struct {
		group string
		n     int32
		want  int32
	}{
		{"polygenelubricants", 50, 0}, // Utils.abs(MIN_VALUE) = 0
		{"hello", 50, 99162322 % 50},
		{"logtransfer", 50, 21},
		{"Aa", 7, 2112 % 7},
		{"", 50, 0},
	} {
		if got := PartitionFor(tc.group, tc.n); got != tc.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", tc.group, tc.n, got, tc.want)
		}
	}
}

// javaHashUTF16 is the definition of String.hashCode over UTF-16 code units.
func javaHashUTF16(units []uint16) int32 {
	var h int32
	for _, u := range units {
		h = 31*h + int32(u)
	}
	return h
}

func TestOffsetsSurviveReopen(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("g", "", -1, map[int32]int64{0: 10, 1: 20, 2: 30})
	h.commit("g", "", -1, map[int32]int64{1: 21})
	h.commit("other", "", -1, map[int32]int64{0: 5})
	h.reopen()
	if got := h.fetch("g", 0, 1, 2, 3); got[0] != 10 || got[1] != 21 || got[2] != 30 || got[3] != -1 {
		t.Fatalf("after reopen: %v", got)
	}
	if got := h.fetch("other", 0); got[0] != 5 {
		t.Fatalf("other after reopen: %v", got)
	}
	if h.store.Topic(OffsetsTopic).Config().CleanupPolicy != "compact" {
		t.Fatalf("cleanup.policy = %q", h.store.Topic(OffsetsTopic).Config().CleanupPolicy)
	}
}

// readRecords decodes every record of a __consumer_offsets partition independently of the
// coordinator's own decoder: kmsg's batch, record and OffsetCommitKey/Value types.
func readRecords(t *testing.T, p *storage.Partition) (keys []kmsg.OffsetCommitKey, values []*kmsg.OffsetCommitValue) {
	t.Helper()
	for off := p.LogStartOffset(); off < p.HighWatermark(); {
		sl, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, sl.Len())
		if err := sl.ReadAt(buf); err != nil {
			t.Fatal(err)
		}
		sl.Release()
		for len(buf) > 0 {
			var b kmsg.RecordBatch
			n := 12 + int(binary.BigEndian.Uint32(buf[8:]))
			if err := b.ReadFrom(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if got := crc32.Checksum(buf[21:n], crc32.MakeTable(crc32.Castagnoli)); got != uint32(b.CRC) {
				t.Fatalf("batch at %d: crc %x, header says %x", b.FirstOffset, got, uint32(b.CRC))
			}
			if b.Magic != 2 || b.Attributes != 0 || b.ProducerID != -1 {
				t.Fatalf("batch header: %+v", b)
			}
			recs := b.Records
			for i := 0; i < int(b.NumRecords); i++ {
				l, sz := binary.Varint(recs)
				var r kmsg.Record
				if err := r.ReadFrom(recs[:sz+int(l)]); err != nil {
					t.Fatal(err)
				}
				recs = recs[sz+int(l):]
				var k kmsg.OffsetCommitKey
				if err := k.ReadFrom(r.Key); err != nil {
					t.Fatalf("key: %v", err)
				}
				keys = append(keys, k)
				if r.Value == nil {
					values = append(values, nil)
					continue
				}
				v := new(kmsg.OffsetCommitValue)
				if err := v.ReadFrom(r.Value); err != nil {
					t.Fatalf("value: %v", err)
				}
				values = append(values, v)
			}
			if len(recs) != 0 {
				t.Fatalf("%d bytes after the records of batch %d", len(recs), b.FirstOffset)
			}
			off = b.FirstOffset + int64(b.LastOffsetDelta) + 1
			buf = buf[n:]
		}
	}
	return keys, values
}

func TestOffsetsTopicFormat(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OffsetsPartitions = 50 })
	const group = "logtransfer"
	h.commit(group, "", -1, map[int32]int64{3: 42})
	d := kmsg.NewPtrOffsetDeleteRequest()
	d.Group = group
	d.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: testTopic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 3}}}}
	h.do(d)

	topic := h.store.Topic(OffsetsTopic)
	if n := len(topic.Partitions()); n != 50 {
		t.Fatalf("%d partitions", n)
	}
	want := PartitionFor(group, 50) // abs(-1338714321) % 50 = 21
	if want != 21 {
		t.Fatalf("partition for %q = %d, want 21", group, want)
	}
	for _, p := range topic.Partitions() {
		keys, values := readRecords(t, p)
		if p.Index() != want {
			if len(keys) != 0 {
				t.Fatalf("partition %d has records for %v", p.Index(), keys)
			}
			continue
		}
		if len(keys) != 2 {
			t.Fatalf("partition %d: %d records, want commit and tombstone", p.Index(), len(keys))
		}
		for _, k := range keys {
			if k.Version != 1 || k.Group != group || k.Topic != testTopic || k.Partition != 3 {
				t.Fatalf("key %+v", k)
			}
		}
		v := values[0]
		if v == nil || v.Version != 3 || v.Offset != 42 || v.LeaderEpoch != 7 || v.Metadata != "md-3" || v.CommitTimestamp != h.clk.Now().UnixMilli() {
			t.Fatalf("value %+v", v)
		}
		if values[1] != nil {
			t.Fatalf("second record is not a tombstone: %+v", values[1])
		}
	}
}

// TestOffsetsLogBounded commits far more than the snapshot threshold and checks that the
// partition stays bounded once the store's retention has run, and that nothing live is lost.
func TestOffsetsLogBounded(t *testing.T) {
	const threshold = 16 << 10
	h := newHarness(t, func(c *Config) { c.OffsetsSegmentBytes = threshold; c.OffsetsPartitions = 1 })
	h.close()
	// Reopen with a fast retention check so that the store deletes old segments promptly.
	st, err := storage.Open(storage.Options{Dir: h.dir, RetentionCheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Store = st
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadErr(); err != nil {
		t.Fatal(err)
	}
	h.store, h.c = st, c
	p := st.Topic(OffsetsTopic).Partition(0)
	want := map[string]int64{}
	var written int64
	for i := 0; i < 800; i++ {
		group := fmt.Sprintf("g%d", i%20)
		offs := map[int32]int64{}
		for part := int32(0); part < 6; part++ {
			offs[part] = int64(i)
			want[fmt.Sprintf("%s/%d", group, part)] = int64(i)
		}
		before := p.HighWatermark()
		h.commit(group, "", -1, offs)
		written += (p.HighWatermark() - before) * 54 // about 54 bytes a record
	}
	// Live state: 20 groups x 6 partitions, under 8 KiB as records.
	bound := retentionFor(threshold, 8<<10) + 2*threshold
	if written < 2*bound {
		t.Fatalf("test wrote only about %d bytes: not enough to exceed the bound %d", written, bound)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Size() > bound {
		if time.Now().After(deadline) {
			t.Fatalf("partition holds %d bytes (wrote about %d), want at most %d", p.Size(), written, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.LogStartOffset() == 0 {
		t.Fatal("no segment was deleted")
	}
	t.Logf("wrote about %d bytes; partition holds %d (bound %d), log start offset %d", written, p.Size(), bound, p.LogStartOffset())
	h.reopen()
	for i := 0; i < 20; i++ {
		group := fmt.Sprintf("g%d", i)
		got := h.fetch(group, 0, 1, 2, 3, 4, 5)
		for part, off := range got {
			if w, ok := want[fmt.Sprintf("%s/%d", group, part)]; ok && off != w || !ok && off != -1 {
				t.Fatalf("%s/%d = %d after bounded log and reopen, want %d", group, part, off, w)
			}
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	k := offsetKey{"grp", "topic", 9}
	v := offsetValue{offset: 123, leaderEpoch: 4, metadata: "meta", commitTime: 1700000000000}
	batches := buildBatches([]kv{{encodeOffsetKey(k), encodeOffsetValue(v)}, {encodeOffsetKey(k), nil}}, 99)
	if len(batches) != 1 {
		t.Fatalf("%d batches", len(batches))
	}
	var got []string
	_, next, err := parseBatches(batches[0], func(off int64, key, value []byte) error {
		gk, err := decodeOffsetKey(key)
		if err != nil {
			return err
		}
		if value == nil {
			got = append(got, fmt.Sprintf("%d %+v nil", off, gk))
			return nil
		}
		gv, err := decodeOffsetValue(value)
		if err != nil {
			return err
		}
		got = append(got, fmt.Sprintf("%d %+v %+v", off, gk, gv))
		return nil
	})
	if err != nil || next != 2 {
		t.Fatalf("parse: next %d err %v", next, err)
	}
	wantRecs := []string{fmt.Sprintf("0 %+v %+v", k, v), fmt.Sprintf("1 %+v nil", k)}
	if fmt.Sprint(got) != fmt.Sprint(wantRecs) {
		t.Fatalf("got %v, want %v", got, wantRecs)
	}
	// A group metadata record (key version 2) is skipped, not an error.
	gm := kmsg.GroupMetadataKey{Version: 2, Group: "grp"}
	if _, err := decodeOffsetKey(gm.AppendTo(nil)); err != errSkip {
		t.Fatalf("group metadata key: %v", err)
	}
	// Older value versions written by Kafka decode.
	v1 := kmsg.OffsetCommitValue{Version: 1, Offset: 5, Metadata: "m", CommitTimestamp: 6, ExpireTimestamp: 7}
	if gv, err := decodeOffsetValue(v1.AppendTo(nil)); err != nil || gv.offset != 5 || gv.leaderEpoch != -1 || gv.commitTime != 6 {
		t.Fatalf("v1 value: %+v %v", gv, err)
	}
	// Large record sets split into several valid batches.
	var many []kv
	for i := 0; i < 20000; i++ {
		many = append(many, kv{encodeOffsetKey(offsetKey{"g", fmt.Sprintf("topic-%d", i), 0}), encodeOffsetValue(v)})
	}
	bs := buildBatches(many, 1)
	if len(bs) < 2 {
		t.Fatalf("%d batches for 20000 records", len(bs))
	}
	n := 0
	for _, b := range bs {
		if len(b) > 1<<20 {
			t.Fatalf("batch of %d bytes", len(b))
		}
		if _, _, err := parseBatches(b, func(int64, []byte, []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n != len(many) {
		t.Fatalf("%d records back, want %d", n, len(many))
	}
}

func FuzzParseBatches(f *testing.F) {
	v := encodeOffsetValue(offsetValue{offset: 1, leaderEpoch: -1, metadata: "x", commitTime: 2})
	for _, b := range buildBatches([]kv{{encodeOffsetKey(offsetKey{"g", "t", 1}), v}, {[]byte{0, 2, 0, 1, 'g'}, nil}}, 5) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 70))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseBatches(b, func(_ int64, key, value []byte) error {
			decodeOffsetKey(key)
			if value != nil {
				decodeOffsetValue(value)
			}
			return nil
		})
	})
}

func FuzzDecodeOffsetRecords(f *testing.F) {
	f.Add(encodeOffsetKey(offsetKey{"g", "t", 1}))
	f.Add(encodeOffsetValue(offsetValue{offset: 1, metadata: "m"}))
	f.Add([]byte{0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := decodeOffsetKey(b); err == nil {
			if got, err := decodeOffsetKey(encodeOffsetKey(k)); err != nil || got != k {
				t.Fatalf("key round trip: %+v %v", got, err)
			}
		}
		if v, err := decodeOffsetValue(b); err == nil {
			if _, err := decodeOffsetValue(encodeOffsetValue(v)); err != nil {
				t.Fatalf("value round trip: %v", err)
			}
		}
	})
}

func TestLoadSkipsForeignRecords(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("g", "", -1, map[int32]int64{0: 7})
	p := h.store.Topic(OffsetsTopic).Partition(PartitionFor("g", h.cfg.OffsetsPartitions))
	gm := kmsg.GroupMetadataKey{Version: 2, Group: "g"}
	recs := []kv{
		{gm.AppendTo(nil), []byte{0, 3, 1, 2, 3}},                  // Kafka's group metadata: skipped
		{[]byte{0xff}, []byte{1}},                                  // garbage key: skipped with a warning
		{encodeOffsetKey(offsetKey{"g", testTopic, 1}), []byte{9}}, // bad value: skipped
		{encodeOffsetKey(offsetKey{"g", testTopic, 2}), encodeOffsetValue(offsetValue{offset: 8, leaderEpoch: -1})},
	}
	for _, b := range buildBatches(recs, 1) {
		if _, err := p.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	h.reopen()
	if got := h.fetch("g", 0, 1, 2); got[0] != 7 || got[1] != -1 || got[2] != 8 {
		t.Fatalf("after reopen: %v", got)
	}
}

// TestSnapshotMakesOlderRecordsRedundant checks the invariant the bounded log rests on:
// replaying only the records from the latest snapshot on gives the whole live state.
func TestSnapshotMakesOlderRecordsRedundant(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OffsetsSegmentBytes = 2 << 10; c.OffsetsPartitions = 1 })
	for i := 0; i < 120; i++ {
		h.commit(fmt.Sprintf("g%d", i%5), "", -1, map[int32]int64{int32(i % 6): int64(i)})
		if i == 60 {
			d := kmsg.NewPtrOffsetDeleteRequest() // a deletion between snapshots
			d.Group = "g0"
			d.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: testTopic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			h.do(d)
		}
	}
	l := h.c.offsets.parts[0]
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.snapStart <= 0 {
		t.Fatalf("no snapshot written (snapStart %d)", l.snapStart)
	}
	replay := &offsetLog{p: l.p, groups: map[string]map[topicPartition]offsetValue{}}
	for off := l.snapStart; off < l.p.HighWatermark(); {
		sl, err := l.p.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, sl.Len())
		if err := sl.ReadAt(buf); err != nil {
			t.Fatal(err)
		}
		sl.Release()
		_, next, err := parseBatches(buf, func(o int64, k, v []byte) error {
			if o < l.snapStart {
				return nil
			}
			return replay.apply(k, v)
		})
		if err != nil {
			t.Fatal(err)
		}
		off = next
	}
	if fmt.Sprint(replay.groups) != fmt.Sprint(l.groups) {
		t.Fatalf("state replayed from the snapshot at %d:\n%v\nlive state:\n%v", l.snapStart, replay.groups, l.groups)
	}
	if _, ok := l.groups["g0"][topicPartition{testTopic, 0}]; !ok {
		// g0/0 was recommitted after the deletion at i=60 (i=90 is g0, partition 0).
		t.Fatal("g0/0 missing from the live state")
	}
}
