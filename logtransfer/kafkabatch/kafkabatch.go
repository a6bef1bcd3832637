// Package kafkabatch decodes the record batches (magic v2) of a Kafka fetch response,
// one batch at a time, so that one batch that cannot be decoded costs only itself.
//
// The Kafka client of the transfer (sarama) decodes a whole fetch response at once: a
// single corrupt batch, or one that decompresses past the limit, fails the response
// for every partition in it. The transfer then reads the stuck partition with this
// package, keeps the good records and skips the bad batch. Its checks are at least as
// strict as sarama's (CRC, framing, varints, lengths, counts, no trailing bytes), and
// decompression is bounded the same way.
package kafkabatch

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// Header is a record header; a nil Key or Value is null.
type Header = recordbatch.RecordHeader

// Record is one decoded record.
type Record struct {
	Offset    int64
	Timestamp time.Time
	Key       []byte // nil: no key
	Value     []byte // nil: no value
	Headers   []Header
}

// Batch is one record batch of a fetch response.
type Batch struct {
	BaseOffset int64
	LastOffset int64 // BaseOffset + last offset delta
	Control    bool  // a transaction marker: no records to index
	// Legacy is a message set of magic 0 or 1, which this package does not decode
	// (sarama does): neither records nor Err.
	Legacy  bool
	Records []Record
	// Err says why the batch cannot be decoded; then Records is nil and Raw holds the
	// batch's bytes (at most to the end of the response).
	Err error
	Raw []byte
	// Size is the batch's length on the wire.
	Size int
}

// legacyMinLength is the shortest message of magic 0 after its length field: crc,
// magic, attributes, key and value lengths.
const legacyMinLength = 14

// ErrTooLarge is the cause of a batch that decompresses past the limit.
var ErrTooLarge = recordbatch.ErrTooLarge

// Decode splits raw (the records of one partition in a fetch response) into batches
// and decodes each, inflating none past maxDecompressed bytes. A trailing incomplete
// batch (the broker cuts the response at its size limit) is not returned. When a
// batch's framing is so broken that the next batch cannot be found, that batch is the
// last returned, with Err set.
func Decode(raw []byte, maxDecompressed int) []Batch {
	var out []Batch
	for len(raw) >= recordbatch.LogOverhead {
		base := int64(binary.BigEndian.Uint64(raw[recordbatch.OffBaseOffset:]))
		size := recordbatch.Size(raw)
		b := Batch{BaseOffset: base, LastOffset: base}
		if len(raw) >= recordbatch.HeaderSize && raw[recordbatch.OffMagic] == 2 {
			b.LastOffset = base + int64(max(0, recordbatch.ParseHeader(raw).LastOffsetDelta))
		}
		if size < recordbatch.HeaderSize && (len(raw) <= recordbatch.OffMagic || raw[recordbatch.OffMagic] == 2 || size-recordbatch.LogOverhead < legacyMinLength) {
			b.Err = fmt.Errorf("batch length %d is below the %d-byte header", size-recordbatch.LogOverhead, recordbatch.HeaderSize-recordbatch.LogOverhead)
			b.Size, b.Raw = len(raw), raw
			return append(out, b)
		}
		if int64(len(raw)) < size {
			break // incomplete: the next fetch has it
		}
		b.Size = int(size)
		decodeBatch(&b, raw[:b.Size], maxDecompressed)
		if b.Err != nil {
			b.Raw = raw[:b.Size:b.Size]
		}
		out = append(out, b)
		raw = raw[b.Size:]
	}
	return out
}

// decodeBatch decodes the batch in raw (exactly one batch) into b: its frame here,
// its records with recordbatch's walker, leniently (a compacted topic's batches
// have gaps between their offset deltas).
func decodeBatch(b *Batch, raw []byte, maxDecompressed int) {
	fail := func(format string, args ...any) {
		b.Err, b.Records = fmt.Errorf(format, args...), nil
	}
	switch magic := raw[recordbatch.OffMagic]; magic {
	case 2:
	case 0, 1:
		b.Legacy = true
		return
	default:
		fail("unknown record batch magic %d", magic)
		return
	}
	h := recordbatch.ParseHeader(raw) // a v2 batch's length is at least its header's
	if got := recordbatch.CRC(raw); h.CRC != got {
		fail("CRC mismatch: header %08x, computed %08x", h.CRC, got)
		return
	}
	b.Control = h.IsControl()
	switch {
	case h.LastOffsetDelta < 0:
		fail("negative last offset delta %d", h.LastOffsetDelta)
		return
	case b.LastOffset < b.BaseOffset:
		fail("base offset %d plus last offset delta %d overflows", b.BaseOffset, h.LastOffsetDelta)
		return
	case h.NumRecords < 0 || int(h.NumRecords) > len(raw)-recordbatch.HeaderSize:
		fail("record count %d for %d bytes", h.NumRecords, len(raw)-recordbatch.HeaderSize)
		return
	case h.Codec() > recordbatch.Zstd:
		fail("decompress: unknown compression codec %d", h.Codec())
		return
	}
	body, err := recordbatch.Decompress(h.Codec(), raw[recordbatch.HeaderSize:], int64(maxDecompressed))
	if err != nil {
		fail("decompress: %w", err)
		return
	}
	if int(h.NumRecords) > len(body) {
		fail("record count %d for %d decompressed bytes", h.NumRecords, len(body))
		return
	}
	logAppend := h.Attributes&recordbatch.AttrLogAppendTime != 0
	recs := make([]Record, 0, h.NumRecords)
	err = recordbatch.Walk(body, h, recordbatch.Lenient, func(r recordbatch.Record) error {
		ts := h.BaseTimestamp + r.TimestampDelta
		if logAppend {
			ts = h.MaxTimestamp
		}
		recs = append(recs, Record{Offset: b.BaseOffset + int64(r.OffsetDelta), Timestamp: time.UnixMilli(ts),
			Key: r.Key, Value: r.Value, Headers: r.Headers})
		return nil
	})
	if err != nil {
		fail("%w", err)
		return
	}
	b.Records = recs
}
