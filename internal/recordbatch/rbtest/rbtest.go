// Package rbtest builds hostile record batches for tests: batches whose frame is
// intact (right length, right CRC) but whose records are built to cost a reader
// as much as possible.
package rbtest

import (
	"bytes"
	"encoding/binary"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// BigRecord is the start of one record whose value claims n bytes; the value's
// bytes are whatever follows (for example what a compressed stream expands to).
func BigRecord(n int64) []byte {
	body := []byte{0, 0, 0, 1} // attributes, timestampDelta 0, offsetDelta 0, null key
	body = binary.AppendVarint(body, n)
	out := binary.AppendVarint(nil, int64(len(body))+n+1) // + the header count
	return append(out, body...)
}

// ZstdBomb is a zstd frame that declares contentSize bytes and holds prefix in a
// raw block, then blocks RLE blocks of 128 KiB of zeros each. With singleSegment
// the frame's window is its declared content size; without, 2 MiB.
func ZstdBomb(contentSize uint64, singleSegment bool, prefix []byte, blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	if singleSegment {
		b = append(b, 0xe0) // content size in 8 bytes, single segment
	} else {
		b = append(b, 0xc0, 0x58) // content size in 8 bytes; window 2^(10+11)
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

// WithRecords returns a batch of n records (as its header says) whose records
// section is exactly records, compressed with codec, with a valid length and CRC.
func WithRecords(codec recordbatch.Codec, n int32, records []byte) []byte {
	raw := recordbatch.Build(recordbatch.New(1, recordbatch.Record{Value: []byte("x")}))
	raw = append(raw[:recordbatch.HeaderSize:recordbatch.HeaderSize], records...)
	raw[recordbatch.OffAttributes+1] = byte(codec)
	binary.BigEndian.PutUint32(raw[recordbatch.OffRecordCount:], uint32(n))
	binary.BigEndian.PutUint32(raw[recordbatch.OffLastOffsetDelta:], uint32(n-1))
	return recordbatch.Reseal(raw)
}

// OverlongVarint returns a one-record batch with a valid CRC whose record's
// offset delta (0) is written in six bytes, one more than Kafka allows.
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
