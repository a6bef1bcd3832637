package kafkabatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/logpipe/logpipe/internal/recordbatch"
	"github.com/logpipe/logpipe/internal/recordbatch/rbtest"
)

func batch(base int64, codec recordbatch.Codec, count, lastDelta int32, records []byte) []byte {
	return rbtest.Batch(base, codec, count, lastDelta, records)
}

func zstdBomb(size uint64) []byte { return rbtest.ZstdBomb(size, 10, []byte("x"), 0) }

var record = rbtest.Record

func TestDecode(t *testing.T) {
	good := batch(10, 0, 2, 1, append(record(0, []byte("k"), []byte("v0"), Header{Key: []byte("host"), Value: []byte("h")}), record(1, nil, []byte("v1"))...))
	overlong := rbtest.OverlongVarintRecord()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(record(0, nil, bytes.Repeat([]byte("a"), 1000)), nil)
	snap := xerial.Encode(nil, record(0, nil, bytes.Repeat([]byte("b"), 1000)))
	raw := bytes.Join([][]byte{
		good,
		batch(12, 0, 1, 0, overlong),
		batch(13, 4, 1, 0, zstdBomb(60<<30)),
		batch(14, 4, 1, 0, zs),
		batch(15, 2, 1, 0, snap),
		good[:30], // incomplete: not returned
	}, nil)
	got := Decode(raw, 64<<20)
	if len(got) != 5 {
		t.Fatalf("%d batches", len(got))
	}
	if g := got[0]; g.Err != nil || len(g.Records) != 2 || g.Records[1].Offset != 11 || string(g.Records[0].Key) != "k" || g.Records[1].Key != nil ||
		string(g.Records[0].Headers[0].Value) != "h" || !g.Records[1].Timestamp.Equal(rbtest.Timestamp.Add(time.Millisecond)) {
		t.Fatalf("good batch: %+v", g)
	}
	if got[1].Err == nil || got[1].BaseOffset != 12 || got[1].LastOffset != 12 {
		t.Fatalf("overlong varint: %+v", got[1])
	}
	if !errors.Is(got[2].Err, ErrTooLarge) {
		t.Fatalf("zstd bomb: %v", got[2].Err)
	}
	if got[3].Err != nil || len(got[3].Records[0].Value) != 1000 || got[4].Err != nil || len(got[4].Records[0].Value) != 1000 {
		t.Fatalf("compressed: %v %v", got[3].Err, got[4].Err)
	}
	// A bad CRC, and a batch length that hides the next batch.
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	if got := Decode(bad, 1<<20); len(got) != 1 || got[0].Err == nil {
		t.Fatalf("bad CRC: %+v", got)
	}
	short := bytes.Clone(good)
	binary.BigEndian.PutUint32(short[8:], 3)
	if got := Decode(append(short, good...), 1<<20); len(got) != 1 || got[0].Err == nil || got[0].LastOffset != 11 {
		t.Fatalf("short length: %+v", got)
	}
}

// FuzzDecode: any bytes decode without panicking, within a small multiple of their
// size in allocations (besides the bounded decompression), and a batch either has an
// error or records inside its offsets.
func FuzzDecode(f *testing.F) {
	f.Add(batch(0, 0, 1, 0, record(0, nil, []byte("v"))))
	f.Add(batch(5, 4, 1, 0, zstdBomb(1<<40)))
	f.Add(batch(7, 2, 1, 0, xerial.Encode(nil, record(0, []byte("k"), []byte("v")))))
	f.Fuzz(func(t *testing.T, raw []byte) {
		const limit = 1 << 20
		before := allocated()
		batches := Decode(raw, limit)
		if got := allocated() - before; got > uint64(64*len(raw)+4*limit+1<<20) {
			t.Fatalf("%d bytes in, %d allocated", len(raw), got)
		}
		for _, b := range batches {
			if b.Err != nil {
				if b.Records != nil {
					t.Fatal("records with an error")
				}
				continue
			}
			for _, r := range b.Records {
				if r.Offset < b.BaseOffset || r.Offset > b.LastOffset {
					t.Fatalf("record offset %d outside %d..%d", r.Offset, b.BaseOffset, b.LastOffset)
				}
			}
		}
	})
}

func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestLegacyMessageSetNotJudged: a magic 1 message is framed, flagged Legacy, and
// neither decoded nor failed (sarama reads those; the rescue must not skip them).
func TestLegacyMessageSetNotJudged(t *testing.T) {
	msg := []byte{0, 0, 0, 0, 1, 0} // crc (unchecked here), magic 1, attributes
	msg = binary.BigEndian.AppendUint64(msg, 0)
	msg = append(msg, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 'x') // key -1, value "x"
	raw := binary.BigEndian.AppendUint64(nil, 42)
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(msg)))
	raw = append(raw, msg...)
	got := Decode(append(raw, batch(43, 0, 1, 0, record(0, nil, []byte("v")))...), 1<<20)
	if len(got) != 2 || !got[0].Legacy || got[0].Err != nil || got[0].BaseOffset != 42 || got[1].Err != nil || got[1].Records[0].Offset != 43 {
		t.Fatalf("%+v", got)
	}
}
