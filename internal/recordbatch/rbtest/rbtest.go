// Package rbtest builds record batches (magic v2) byte by byte for the tests of
// the broker and of the transfer: honest ones, and hostile ones whose frame is
// intact (right length, right CRC) but whose records are built to cost a reader as
// much as possible or to be wrong in one chosen way. The bytes are independent of
// any client, so a test can send them with a raw Produce, serve them from a fake
// broker, or write them into a segment.
package rbtest

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// Timestamp is the first timestamp of every batch built by Batch.
var Timestamp = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Record encodes one record, number delta of its batch (its timestamp delta too),
// behind its varint length; a nil key or value is null.
func Record(delta int, key, value []byte, headers ...recordbatch.RecordHeader) []byte {
	return recordbatch.AppendRecord(nil, int32(delta), recordbatch.Record{
		TimestampDelta: int64(delta), Key: key, Value: value, Headers: headers})
}

// Batch wraps records (encoded, and already compressed with codec unless None) in
// a v2 batch header with a valid length and CRC: count records, the last at offset
// delta lastDelta, no producer id, timestamps from Timestamp.
func Batch(base int64, codec recordbatch.Codec, count, lastDelta int32, records []byte) []byte {
	ts := uint64(Timestamp.UnixMilli())
	b := make([]byte, recordbatch.HeaderSize, recordbatch.HeaderSize+len(records))
	binary.BigEndian.PutUint64(b[recordbatch.OffBaseOffset:], uint64(base))
	b[recordbatch.OffMagic] = 2
	binary.BigEndian.PutUint16(b[recordbatch.OffAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(b[recordbatch.OffLastOffsetDelta:], uint32(lastDelta))
	binary.BigEndian.PutUint64(b[recordbatch.OffBaseTimestamp:], ts)
	binary.BigEndian.PutUint64(b[recordbatch.OffMaxTimestamp:], ts)
	binary.BigEndian.PutUint64(b[recordbatch.OffProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(b[recordbatch.OffProducerEpoch:], ^uint16(0))
	binary.BigEndian.PutUint32(b[recordbatch.OffBaseSequence:], ^uint32(0))
	binary.BigEndian.PutUint32(b[recordbatch.OffRecordCount:], uint32(count))
	return recordbatch.Reseal(append(b, records...))
}

// WithRecords is a batch of n records (as its header says) at offset 0 whose
// records section is exactly records, compressed with codec.
func WithRecords(codec recordbatch.Codec, n int32, records []byte) []byte {
	return Batch(0, codec, n, n-1, records)
}

// BigRecord is the start of one record whose value claims n bytes; the value's
// bytes are whatever follows (for example what a compressed stream expands to).
func BigRecord(n int64) []byte {
	body := []byte{0, 0, 0, 1} // attributes, timestampDelta 0, offsetDelta 0, null key
	body = binary.AppendVarint(body, n)
	out := binary.AppendVarint(nil, int64(len(body))+n+1) // + the header count
	return append(out, body...)
}

// ZstdBomb is a zstd frame that declares contentSize bytes and holds prefix in a
// raw block, then blocks RLE blocks of 128 KiB of zeros each. Its window is
// 1<<windowLog bytes (10 to 41), or with windowLog 0 its declared content size (a
// single-segment frame). A decoder that trusts the header allocates contentSize
// bytes up front.
func ZstdBomb(contentSize uint64, windowLog int, prefix []byte, blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	if windowLog == 0 {
		b = append(b, 0xe0) // content size in 8 bytes, single segment
	} else {
		b = append(b, 0xc0, byte(windowLog-10)<<3) // content size in 8 bytes; the window
	}
	b = binary.LittleEndian.AppendUint64(b, contentSize)
	hdr := uint32(len(prefix)) << 3 // raw block
	if blocks == 0 {
		hdr |= 1 // last block
	}
	b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16))
	b = append(b, prefix...)
	const size = 128 << 10
	for i := 0; i < blocks; i++ {
		last := uint32(0)
		if i == blocks-1 {
			last = 1
		}
		hdr := last | 1<<1 | size<<3 // RLE block
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return b
}

// ZstdBombBatch is a one-record zstd batch whose frame, with a 1 KiB window,
// declares size bytes and holds one (79 bytes in all for 60 GiB).
func ZstdBombBatch(size uint64) []byte {
	return Batch(0, recordbatch.Zstd, 1, 0, ZstdBomb(size, 10, []byte("x"), 0))
}

// OverlongVarint returns a one-record batch with a valid CRC whose record's
// offset delta (0) is written in six bytes, one more than Kafka allows: a strict
// reader refuses it, encoding/binary reads it.
func OverlongVarint() []byte {
	raw := recordbatch.Build(recordbatch.New(1, recordbatch.Record{Key: []byte("k"), Value: []byte("value")}))
	rec := bytes.Clone(raw[recordbatch.HeaderSize:])
	// The record: length, attributes, timestampDelta, offsetDelta, ...
	out := append([]byte{}, rec[:3]...)
	out = append(out, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)
	out = append(out, rec[4:]...)
	out[0] = byte(2 * (len(out) - 1)) // the record's length varint (one byte here)
	return recordbatch.Reseal(append(raw[:recordbatch.HeaderSize:recordbatch.HeaderSize], out...))
}

// OverlongVarintRecord is a record whose key length is an 11-byte varint, longer
// than any: every decoder refuses it (sarama and encoding/binary with "varint
// overflow").
func OverlongVarintRecord() []byte {
	body := append([]byte{0, 0, 0}, bytes.Repeat([]byte{0xff}, 11)...)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// OverlongVarintBatch is a one-record batch with a valid CRC whose record is
// OverlongVarintRecord.
func OverlongVarintBatch() []byte {
	return Batch(0, recordbatch.None, 1, 0, OverlongVarintRecord())
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
	body := rec[1:] // Record's length is one varint byte for so short a record
	return Batch(0, recordbatch.None, 1, 0, append(binary.AppendVarint(nil, int64(len(body)+1000)), body...))
}
