package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch builds an uncompressed record batch of n records with the given values
// prefix, timestamp and producer fields, as a producer would send it.
type batchSpec struct {
	n        int
	value    string
	ts       int64
	pid      int64
	epoch    int16
	seq      int32
	valueLen int // pad values to this length
}

func makeBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	if s.n == 0 {
		s.n = 1
	}
	if s.ts == 0 {
		s.ts = time.Now().UnixMilli()
	}
	if s.pid == 0 {
		s.pid, s.epoch, s.seq = -1, -1, -1
	}
	recs := make([]recordbatch.Record, s.n)
	for i := range recs {
		v := fmt.Sprintf("%s-%d", s.value, i)
		for len(v) < s.valueLen {
			v += "x"
		}
		recs[i] = recordbatch.Record{Value: []byte(v), Key: []byte("k")}
	}
	b := recordbatch.New(s.ts, recs...)
	b.ProducerID, b.ProducerEpoch, b.BaseSequence = s.pid, s.epoch, s.seq
	return recordbatch.Build(b)
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// decodeValues returns the record values of the batches in data, with their offsets.
func decodeValues(t testing.TB, data []byte) (offsets []int64, values []string) {
	t.Helper()
	for len(data) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(data); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		n := int(b.Length) + 12
		recs := b.Records
		for i := 0; i < int(b.NumRecords); i++ {
			var r kmsg.Record
			if err := r.ReadFrom(recs); err != nil {
				t.Fatalf("decode record: %v", err)
			}
			recs = recs[varintLen(int64(r.Length))+int(r.Length):]
			offsets = append(offsets, b.FirstOffset+int64(r.OffsetDelta))
			values = append(values, string(r.Value))
		}
		data = data[n:]
	}
	return offsets, values
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func openStore(t testing.TB, dir string, mod func(*Options)) *Store {
	t.Helper()
	o := Options{Dir: dir, Defaults: DefaultTopicConfig()}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func readAll(t testing.TB, p *Partition, from int64) (offsets []int64, values []string) {
	t.Helper()
	for off := from; off < p.HighWatermark(); {
		sl, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		buf := make([]byte, sl.Len())
		if err := sl.ReadAt(buf); err != nil {
			t.Fatal(err)
		}
		sl.Release()
		o, v := decodeValues(t, buf)
		for i := range o {
			if o[i] >= off {
				offsets = append(offsets, o[i])
				values = append(values, v[i])
			}
		}
		off = o[len(o)-1] + 1
	}
	return offsets, values
}

// checkProducerBatch is the check Append applies to a batch: the produce rules
// (recordbatch.CheckProduced) with maxBytes, on the frame alone.
func checkProducerBatch(b []byte, maxBytes int32) (recordbatch.Header, error) {
	return recordbatch.CheckProduced(b, recordbatch.ProduceRules{MaxBytes: int64(maxBytes)})
}
