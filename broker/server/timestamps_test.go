package server

import (
	"testing"

	"github.com/klauspost/compress/snappy/xerial"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// testBatch builds a batch of n records at offsets 1000.. with timestamps
// base+10*i, compressed with codec (22: snappy in xerial framing, as Java clients
// send it).
func testBatch(t *testing.T, codec byte, n int, base int64) []byte {
	t.Helper()
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{TimestampDelta: int64(10 * i), Value: []byte("abc")}
	}
	b := recordbatch.New(base, recs...)
	b.BaseOffset = 1000
	if codec != 22 {
		b.Attributes = int16(codec)
		return recordbatch.Build(b)
	}
	raw := recordbatch.Build(b)
	out := append(raw[:recordbatch.HeaderSize:recordbatch.HeaderSize], xerial.Encode(nil, raw[recordbatch.HeaderSize:])...)
	out[recordbatch.OffAttributes+1] = byte(recordbatch.Snappy)
	return recordbatch.Reseal(out)
}

func TestFindTimestamp(t *testing.T) {
	for _, codec := range []byte{0, 1, 2, 22, 3, 4} {
		b := testBatch(t, codec, 50, 5000)
		for ts, want := range map[int64]int64{0: 1000, 5000: 1000, 5001: 1001, 5250: 1025, 5490: 1049} {
			off, got, err := findTimestamp(b, ts)
			if err != nil || off != want || got < ts {
				t.Fatalf("codec %d ts %d: offset %d timestamp %d err %v, want offset %d", codec, ts, off, got, err, want)
			}
		}
		if _, _, err := findTimestamp(b, 5491); err == nil {
			t.Fatalf("codec %d: found a record after the last timestamp", codec)
		}
	}
	// Garbage never panics.
	b := testBatch(t, 0, 5, 0)
	for i := recordbatch.HeaderSize; i < len(b); i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0xff
		findTimestamp(c, 30)
		findTimestamp(c[:i], 30)
	}
}
