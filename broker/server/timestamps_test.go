package server

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// testBatch builds a batch of n records with timestamps base+10*i, compressed
// with codec (the CRC is not needed here).
func testBatch(t *testing.T, codec byte, n int, base int64) []byte {
	t.Helper()
	var recs []byte
	for i := range n {
		var r []byte
		r = append(r, 0)
		r = binary.AppendVarint(r, int64(10*i))
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, 3)
		r = append(r, "abc"...)
		r = binary.AppendVarint(r, 0)
		recs = append(binary.AppendVarint(recs, int64(len(r))), r...)
	}
	var buf bytes.Buffer
	switch codec {
	case 0:
		buf.Write(recs)
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case 2:
		buf.Write(snappy.Encode(nil, recs))
	case 22: // xerial-framed snappy, as Java clients send it
		buf.Write(xerial.Encode(nil, recs))
		codec = 2
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case 4:
		w, _ := zstd.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+buf.Len())
	binary.BigEndian.PutUint64(b, 1000)
	b[16] = 2
	b[22] = codec
	binary.BigEndian.PutUint64(b[27:], uint64(base))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	b = append(b, buf.Bytes()...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return b
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
	for i := batchHeaderSize; i < len(b); i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0xff
		findTimestamp(c, 30)
		findTimestamp(c[:i], 30)
	}
}
