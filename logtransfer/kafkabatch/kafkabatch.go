// Package kafkabatch decodes the record batches (magic v2) of a Kafka fetch response,
// one batch at a time, so that one batch that cannot be decoded costs only itself.
//
// The Kafka client of the transfer (sarama) decodes a whole fetch response at once: a
// single corrupt batch, or one that decompresses past the limit, fails the response
// for every partition in it. The transfer then reads the stuck partition with this
// package, keeps the good records and skips the bad batch. It is a framing loop over
// internal/recordbatch, the broker's own reader of batches: its checks (CRC, framing,
// varints, lengths, counts, no trailing bytes) are at least as strict as sarama's,
// and decompression is bounded the same way.
package kafkabatch

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// Header is a record header.
type Header struct {
	Key, Value []byte
}

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

// batchOverhead is the length of a v2 batch header from the partition leader epoch
// to the record count (the batch length field counts from there).
const batchOverhead = recordbatch.HeaderSize - recordbatch.LogOverhead

// headerLen is the base offset and batch length fields before it.
const headerLen = recordbatch.LogOverhead

// ErrTooLarge is the cause of a batch that decompresses past the limit.
var ErrTooLarge = recordbatch.ErrTooLarge

// Decode splits raw (the records of one partition in a fetch response) into batches
// and decodes each, inflating none past maxDecompressed bytes. A trailing incomplete
// batch (the broker cuts the response at its size limit) is not returned. When a
// batch's framing is so broken that the next batch cannot be found, that batch is the
// last returned, with Err set.
func Decode(raw []byte, maxDecompressed int) []Batch {
	var out []Batch
	for len(raw) >= headerLen {
		base := int64(binary.BigEndian.Uint64(raw))
		length := int(int32(binary.BigEndian.Uint32(raw[recordbatch.OffBatchLength:])))
		b := Batch{BaseOffset: base, LastOffset: base}
		if len(raw) >= recordbatch.HeaderSize && raw[recordbatch.OffMagic] == 2 {
			b.LastOffset = base + int64(max(0, int32(binary.BigEndian.Uint32(raw[recordbatch.OffLastOffsetDelta:]))))
		}
		if length < batchOverhead && (len(raw) <= recordbatch.OffMagic || raw[recordbatch.OffMagic] == 2 || length < 14) {
			b.Err = fmt.Errorf("batch length %d is below the %d-byte header", length, batchOverhead)
			b.Size, b.Raw = len(raw), raw
			return append(out, b)
		}
		if len(raw) < headerLen+length {
			break // incomplete: the next fetch has it
		}
		b.Size = headerLen + length
		decodeBatch(&b, raw[:b.Size], maxDecompressed)
		if b.Err != nil {
			b.Raw = raw[:b.Size:b.Size]
		}
		out = append(out, b)
		raw = raw[b.Size:]
	}
	return out
}

// decodeBatch decodes the batch in raw (exactly one batch) into b, with
// recordbatch's reader of fetched batches: the broker's own checks, with the offset
// gaps a compacted topic has.
func decodeBatch(b *Batch, raw []byte, maxDecompressed int) {
	switch magic := raw[recordbatch.OffMagic]; magic {
	case 2:
	case 0, 1:
		b.Legacy = true
		return
	default:
		b.Err = fmt.Errorf("unknown record batch magic %d", magic)
		return
	}
	h := recordbatch.ParseHeader(raw)
	b.Control = h.IsControl()
	var recs []Record
	_, err := recordbatch.FetchedRecords(raw, int64(maxDecompressed), func(r recordbatch.Record) error {
		ts := h.BaseTimestamp + r.TimestampDelta
		if h.Attributes&recordbatch.AttrLogAppendTime != 0 {
			ts = h.MaxTimestamp
		}
		rec := Record{Offset: h.BaseOffset + int64(r.OffsetDelta), Timestamp: time.UnixMilli(ts), Key: r.Key, Value: r.Value}
		if r.Headers != nil {
			rec.Headers = make([]Header, len(r.Headers))
			for i, hd := range r.Headers {
				rec.Headers[i] = Header{Key: []byte(hd.Key), Value: hd.Value}
			}
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		b.Err = err
		return
	}
	b.Records = recs
}
