// Package batchtest builds Kafka record batches (magic v2) byte by byte for tests:
// honest ones, and the hostile ones the transfer must survive. The bytes are
// independent of any client or broker, so a test can send them with a raw Produce,
// serve them from a fake broker, or write them into a segment.
package batchtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"time"
)

// Header is a record header.
type Header struct {
	Key, Value []byte
}

// Record encodes one record (attributes, timestamp delta, offset delta delta, key,
// value, headers, behind its varint length); a nil key or value is encoded as -1.
func Record(delta int, key, value []byte, headers ...Header) []byte {
	body := []byte{0}
	body = binary.AppendVarint(body, int64(delta))
	body = binary.AppendVarint(body, int64(delta))
	for _, b := range [][]byte{key, value} {
		if b == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(b)))
			body = append(body, b...)
		}
	}
	body = binary.AppendVarint(body, int64(len(headers)))
	for _, h := range headers {
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		body = binary.AppendVarint(body, int64(len(h.Value)))
		body = append(body, h.Value...)
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// OverlongVarintRecord is a record whose key length is an 11-byte varint (at most 10
// are valid): a decoder reports "varint overflow".
func OverlongVarintRecord() []byte {
	body := append([]byte{0, 0, 0}, bytes.Repeat([]byte{0xff}, 11)...)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// ZstdBomb is a zstd frame that declares a content size of size bytes, with a 1 KiB
// window, and holds one byte: a decoder that trusts the header allocates size bytes
// up front (klauspost/compress does, up to its default 64 GiB bound).
func ZstdBomb(size uint64) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x00} // magic; 8-byte content size; window 1 KiB
	f = binary.LittleEndian.AppendUint64(f, size)
	return append(f, 0x09, 0x00, 0x00, 'x') // the last block: raw, one byte
}

// Codecs, in the batch attributes.
const (
	None   = 0
	Gzip   = 1
	Snappy = 2
	LZ4    = 3
	Zstd   = 4
)

// Timestamp is the first timestamp of every batch built here.
var Timestamp = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Batch wraps records (encoded, and compressed with codec unless None) in a v2 batch
// header with a valid CRC: count records with offset deltas 0..lastDelta, no producer
// id, timestamps from Timestamp.
func Batch(base int64, codec uint16, count, lastDelta int32, records []byte) []byte {
	b := make([]byte, 61, 61+len(records))
	binary.BigEndian.PutUint64(b, uint64(base))
	binary.BigEndian.PutUint32(b[8:], uint32(49+len(records)))
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], codec)
	binary.BigEndian.PutUint32(b[23:], uint32(lastDelta))
	binary.BigEndian.PutUint64(b[27:], uint64(Timestamp.UnixMilli()))
	binary.BigEndian.PutUint64(b[35:], uint64(Timestamp.UnixMilli()))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))
	binary.BigEndian.PutUint16(b[51:], ^uint16(0))
	binary.BigEndian.PutUint32(b[53:], ^uint32(0))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// OverlongVarintBatch is a one-record batch with a valid CRC whose record holds an
// overlong varint.
func OverlongVarintBatch() []byte { return Batch(0, None, 1, 0, OverlongVarintRecord()) }

// ZstdBombBatch is a one-record zstd batch whose frame declares size bytes (79 bytes
// in all for 60 GiB).
func ZstdBombBatch(size uint64) []byte { return Batch(0, Zstd, 1, 0, ZstdBomb(size)) }

// ValuePastEndBatch is a one-record batch with a valid CRC whose record's value length
// claims 1000 bytes of the 1 the record holds. sarama takes the batch for one cut
// short by the fetch size: it reports no error and asks for ever more bytes (until
// Consumer.Fetch.Max, when set).
func ValuePastEndBatch() []byte {
	body := []byte{0, 0, 0, 1} // attributes, timestamp and offset deltas, key -1
	body = binary.AppendVarint(body, 1000)
	body = append(body, 'x', 0)
	return Batch(0, None, 1, 0, append(binary.AppendVarint(nil, int64(len(body))), body...))
}

// RecordPastEndBatch is a one-record batch with a valid CRC whose record's length
// field claims 1000 bytes more than the batch holds.
func RecordPastEndBatch() []byte {
	rec := Record(0, nil, []byte("x"))
	body := rec[1:] // Record's length is one varint byte for so short a record
	return Batch(0, None, 1, 0, append(binary.AppendVarint(nil, int64(len(body)+1000)), body...))
}
