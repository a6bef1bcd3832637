package recordbatch_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"

	"github.com/logpipe/logpipe/broker/recordbatch"
	"github.com/logpipe/logpipe/broker/recordbatch/rbtest"
)

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func lz4ed(b []byte) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestOverlongVarint: a record whose offset delta takes six bytes is refused.
func TestOverlongVarint(t *testing.T) {
	if _, err := recordbatch.Validate(rbtest.OverlongVarint(), 1<<20); !errors.Is(err, recordbatch.ErrInvalidRecord) || !strings.Contains(err.Error(), "varint longer") {
		t.Fatalf("Validate = %v", err)
	}
}

// TestDecompressionBombs: a claim of 60 GiB, and a stream that really expands far
// past the bound, both fail quickly without allocating the claim.
func TestDecompressionBombs(t *testing.T) {
	big := append(rbtest.BigRecord(1<<30), make([]byte, 16<<20)...)
	cases := map[string][]byte{
		"zstd declares 60 GiB": rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, true, rbtest.BigRecord(1<<30), 2)),
		"zstd expands past 4M": rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, false, rbtest.BigRecord(1<<30), 64)),
		"gzip expands past 4M": rbtest.WithRecords(recordbatch.Gzip, 1, gzipped(big)),
		"lz4 expands past 4M":  rbtest.WithRecords(recordbatch.LZ4, 1, lz4ed(big)),
		"snappy past 4M":       rbtest.WithRecords(recordbatch.Snappy, 1, snappy.Encode(nil, big)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := recordbatch.Validate(b, 4<<20)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, recordbatch.ErrInvalidRecord) || !strings.Contains(err.Error(), "more than") && !strings.Contains(err.Error(), "window") {
				t.Fatalf("Validate = %v, want recordbatch.ErrInvalidRecord", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Fatalf("Validate allocated %d MiB for a %d-byte batch", grew>>20, len(b))
			}
			if _, err := recordbatch.Decompress(recordbatch.ParseHeader(b).Codec(), b[recordbatch.HeaderSize:], 4<<20); err == nil {
				t.Fatal("Decompress: no error")
			}
		})
	}
}
