package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Batch describes a batch to build. Offset deltas are the records' positions;
// Record.OffsetDelta is ignored.
type Batch struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Attributes           int16 // the codec bits choose the compression
	BaseTimestamp        int64
	MaxTimestamp         int64 // 0 = BaseTimestamp plus the largest timestamp delta
	ProducerID           int64 // -1 = none
	ProducerEpoch        int16 // -1 = none
	BaseSequence         int32 // -1 = none
	Records              []Record
}

// New returns a batch of records at timestamp ts with no producer (ids, epoch and
// sequence -1), as a plain producer or the broker itself writes one.
func New(ts int64, records ...Record) Batch {
	return Batch{
		PartitionLeaderEpoch: -1,
		BaseTimestamp:        ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		Records:              records,
	}
}

// AppendRecord appends the encoding of r, as record number i of its batch, to dst.
func AppendRecord(dst []byte, i int32, r Record) []byte {
	b := make([]byte, 0, 16+len(r.Key)+len(r.Value))
	b = append(b, byte(r.Attributes))
	b = binary.AppendVarint(b, r.TimestampDelta)
	b = binary.AppendVarint(b, int64(i))
	b = appendBytes(b, r.Key)
	b = appendBytes(b, r.Value)
	b = binary.AppendVarint(b, int64(len(r.Headers)))
	for _, h := range r.Headers {
		b = binary.AppendVarint(b, int64(len(h.Key)))
		b = append(b, h.Key...)
		b = appendBytes(b, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Build encodes b as one batch with its length and CRC filled in.
func Build(b Batch) []byte {
	var recs []byte
	maxDelta := int64(0)
	for i, r := range b.Records {
		recs = AppendRecord(recs, int32(i), r)
		maxDelta = max(maxDelta, r.TimestampDelta)
	}
	codec := Codec(b.Attributes & AttrCodecMask)
	if codec != None {
		recs = compress(codec, recs)
	}
	maxTs := b.MaxTimestamp
	if maxTs == 0 {
		maxTs = b.BaseTimestamp + maxDelta
	}
	out := make([]byte, HeaderSize, HeaderSize+len(recs))
	binary.BigEndian.PutUint64(out[OffBaseOffset:], uint64(b.BaseOffset))
	binary.BigEndian.PutUint32(out[OffBatchLength:], uint32(HeaderSize-LogOverhead+len(recs)))
	binary.BigEndian.PutUint32(out[OffLeaderEpoch:], uint32(b.PartitionLeaderEpoch))
	out[OffMagic] = 2
	binary.BigEndian.PutUint16(out[OffAttributes:], uint16(b.Attributes))
	binary.BigEndian.PutUint32(out[OffLastOffsetDelta:], uint32(len(b.Records)-1))
	binary.BigEndian.PutUint64(out[OffBaseTimestamp:], uint64(b.BaseTimestamp))
	binary.BigEndian.PutUint64(out[OffMaxTimestamp:], uint64(maxTs))
	binary.BigEndian.PutUint64(out[OffProducerID:], uint64(b.ProducerID))
	binary.BigEndian.PutUint16(out[OffProducerEpoch:], uint16(b.ProducerEpoch))
	binary.BigEndian.PutUint32(out[OffBaseSequence:], uint32(b.BaseSequence))
	binary.BigEndian.PutUint32(out[OffRecordCount:], uint32(len(b.Records)))
	out = append(out, recs...)
	binary.BigEndian.PutUint32(out[OffCRC:], CRC(out))
	return out
}

// Reseal recomputes the batchLength and CRC of a batch whose bytes were changed
// (tests use it to build batches that are wrong in one chosen way).
func Reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[OffBatchLength:], uint32(len(b)-LogOverhead))
	binary.BigEndian.PutUint32(b[OffCRC:], CRC(b))
	return b
}

// compress compresses records with codec, as producers do (snappy unframed, lz4
// frames, gzip and zstd streams).
func compress(codec Codec, recs []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case Gzip:
		w := gzip.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case Snappy:
		return snappy.Encode(nil, recs)
	case LZ4:
		w := lz4.NewWriter(&buf)
		w.Write(recs)
		w.Close()
	case Zstd:
		w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		w.Write(recs)
		w.Close()
	default:
		panic(fmt.Sprintf("recordbatch: cannot compress with %s", codec))
	}
	return buf.Bytes()
}
