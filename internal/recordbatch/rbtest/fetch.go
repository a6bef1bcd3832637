package rbtest

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// Header is a record header, as Record takes it.
type Header struct {
	Key, Value []byte
}

// Record encodes one record with timestamp and offset delta delta (behind its varint
// length); a nil key or value is encoded as -1.
func Record(delta int, key, value []byte, headers ...Header) []byte {
	r := recordbatch.Record{TimestampDelta: int64(delta), Key: key, Value: value}
	for _, h := range headers {
		r.Headers = append(r.Headers, recordbatch.RecordHeader{Key: string(h.Key), Value: h.Value})
	}
	return recordbatch.AppendRecord(nil, int32(delta), r)
}

// OverlongVarintRecord is a record whose key length is an 11-byte varint (at most 10
// are valid, 5 in Kafka's records).
func OverlongVarintRecord() []byte {
	body := append([]byte{0, 0, 0}, bytes.Repeat([]byte{0xff}, 11)...)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// Timestamp is the first timestamp of every batch Batch builds.
var Timestamp = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Batch wraps records (encoded, and compressed with codec unless None) in a v2 batch
// header with a valid length and CRC: count records with offset deltas 0..lastDelta
// from base, no producer id, timestamps from Timestamp.
func Batch(base int64, codec recordbatch.Codec, count, lastDelta int32, records []byte) []byte {
	b := recordbatch.Build(recordbatch.New(Timestamp.UnixMilli()))[:recordbatch.HeaderSize]
	binary.BigEndian.PutUint64(b[recordbatch.OffBaseOffset:], uint64(base))
	binary.BigEndian.PutUint16(b[recordbatch.OffAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(b[recordbatch.OffLastOffsetDelta:], uint32(lastDelta))
	binary.BigEndian.PutUint32(b[recordbatch.OffRecordCount:], uint32(count))
	return recordbatch.Reseal(append(b, records...))
}

// OverlongVarintBatch is a one-record batch with a valid CRC whose record holds an
// overlong varint.
func OverlongVarintBatch() []byte { return Batch(0, recordbatch.None, 1, 0, OverlongVarintRecord()) }

// ZstdBombBatch is a one-record zstd batch whose frame declares size bytes and holds
// one.
func ZstdBombBatch(size uint64) []byte {
	return Batch(0, recordbatch.Zstd, 1, 0, ZstdBomb(size, false, []byte("x"), 0))
}

// ValuePastEndBatch is a one-record batch with a valid CRC whose record's value length
// claims 1000 bytes of the 1 the record holds. sarama takes the batch for one cut
// short by the fetch size: it reports no error and asks for ever more bytes (until
// Consumer.Fetch.Max, when set).
func ValuePastEndBatch() []byte {
	body := []byte{0, 0, 0, 1} // attributes, timestamp and offset deltas, key -1
	body = binary.AppendVarint(body, 1000)
	body = append(body, 'x', 0)
	return Batch(0, recordbatch.None, 1, 0, append(binary.AppendVarint(nil, int64(len(body))), body...))
}

// RecordPastEndBatch is a one-record batch with a valid CRC whose record's length
// field claims 1000 bytes more than the batch holds.
func RecordPastEndBatch() []byte {
	rec := Record(0, nil, []byte("x"))
	body := rec[1:] // the length is one varint byte for so short a record
	return Batch(0, recordbatch.None, 1, 0, append(binary.AppendVarint(nil, int64(len(body)+1000)), body...))
}
