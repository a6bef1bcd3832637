package recordbatch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/pierrec/lz4/v4"

	"github.com/logpipe/logpipe/internal/recordbatch"
	"github.com/logpipe/logpipe/internal/recordbatch/rbtest"
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

// xerialClaims is snappy data in the xerial framing of n blocks that each declare
// claim decoded bytes and hold none of them.
func xerialClaims(n int, claim uint64) []byte {
	b := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	block := binary.AppendUvarint(nil, claim)
	for i := 0; i < n; i++ {
		b = binary.BigEndian.AppendUint32(b, uint32(len(block)))
		b = append(b, block...)
	}
	return b
}

// TestSnappyFramings: records compressed as one snappy block (librdkafka, sarama)
// and in the xerial framing (Kafka's Java client) are both read.
func TestSnappyFramings(t *testing.T) {
	raw := recordbatch.Build(recordbatch.New(1, recordbatch.Record{Value: []byte("one")}, recordbatch.Record{Value: []byte("two")}))
	records := raw[recordbatch.HeaderSize:]
	for name, body := range map[string][]byte{
		"block":  snappy.Encode(nil, records),
		"xerial": xerial.Encode(nil, records),
	} {
		b := rbtest.WithRecords(recordbatch.Snappy, 2, body)
		if _, err := recordbatch.Validate(b, 1<<20); err != nil {
			t.Fatalf("%s: Validate = %v", name, err)
		}
		got, err := recordbatch.Decompress(recordbatch.Snappy, body, 1<<20)
		if err != nil || !bytes.Equal(got, records) {
			t.Fatalf("%s: Decompress = %d bytes, %v", name, len(got), err)
		}
	}
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
		"zstd declares 60 GiB": rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, 0, rbtest.BigRecord(1<<30), 2)),
		"zstd expands past 4M": rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, 21, rbtest.BigRecord(1<<30), 64)),
		"gzip expands past 4M": rbtest.WithRecords(recordbatch.Gzip, 1, gzipped(big)),
		"lz4 expands past 4M":  rbtest.WithRecords(recordbatch.LZ4, 1, lz4ed(big)),
		"snappy past 4M":       rbtest.WithRecords(recordbatch.Snappy, 1, snappy.Encode(nil, big)),
		// A snappy block states its decoded length first: 3 GiB here, for 4 bytes.
		"snappy declares 3 GiB": rbtest.WithRecords(recordbatch.Snappy, 1, binary.AppendUvarint(nil, 3<<30)),
		// In the xerial framing, 1,000 blocks that each declare 1 MiB.
		"xerial blocks declare 1000 MiB": rbtest.WithRecords(recordbatch.Snappy, 1, xerialClaims(1000, 1<<20)),
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
