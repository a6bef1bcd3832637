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
	"errors"
	"fmt"
	"hash/crc32"
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
const batchOverhead = 49

// headerLen is the base offset and batch length fields before it.
const headerLen = 12

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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
		length := int(int32(binary.BigEndian.Uint32(raw[8:])))
		b := Batch{BaseOffset: base, LastOffset: base}
		if len(raw) >= headerLen+batchOverhead && raw[16] == 2 {
			b.LastOffset = base + int64(max(0, int32(binary.BigEndian.Uint32(raw[23:]))))
		}
		if length < batchOverhead && (len(raw) < 17 || raw[16] == 2 || length < 14) {
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

// decodeBatch decodes the v2 batch in raw (exactly one batch) into b.
func decodeBatch(b *Batch, raw []byte, maxDecompressed int) {
	fail := func(format string, args ...any) {
		b.Err, b.Records = fmt.Errorf(format, args...), nil
	}
	switch magic := raw[16]; magic {
	case 2:
	case 0, 1:
		b.Legacy = true
		return
	default:
		fail("unknown record batch magic %d", magic)
		return
	}
	if want, got := binary.BigEndian.Uint32(raw[17:]), crc32.Checksum(raw[21:], castagnoli); want != got {
		fail("CRC mismatch: header %08x, computed %08x", want, got)
		return
	}
	attrs := binary.BigEndian.Uint16(raw[21:])
	lastDelta := int32(binary.BigEndian.Uint32(raw[23:]))
	firstTS := int64(binary.BigEndian.Uint64(raw[27:]))
	maxTS := int64(binary.BigEndian.Uint64(raw[35:]))
	count := int32(binary.BigEndian.Uint32(raw[57:]))
	b.Control = attrs&0x20 != 0
	if lastDelta < 0 {
		fail("negative last offset delta %d", lastDelta)
		return
	}
	if count < 0 || int(count) > len(raw)-61 {
		fail("record count %d for %d bytes", count, len(raw)-61)
		return
	}
	body, err := decompress(attrs&0x7, raw[61:], maxDecompressed)
	if err != nil {
		fail("decompress: %w", err)
		return
	}
	if int(count) > len(body) {
		fail("record count %d for %d decompressed bytes", count, len(body))
		return
	}
	logAppend := attrs&0x8 != 0
	recs := make([]Record, 0, count)
	d := decoder{buf: body}
	for i := int32(0); i < count; i++ {
		r, err := d.record()
		if err != nil {
			fail("record %d of %d: %w", i, count, err)
			return
		}
		r.Offset = b.BaseOffset + r.Offset
		if r.Offset > b.LastOffset {
			fail("record %d offset delta past the batch's last offset", i)
			return
		}
		ts := firstTS + r.Timestamp.UnixMilli() // the delta, see record
		if logAppend {
			ts = maxTS
		}
		r.Timestamp = time.UnixMilli(ts)
		recs = append(recs, r)
	}
	if len(d.buf) != 0 {
		fail("%d bytes after the last record", len(d.buf))
		return
	}
	b.Records = recs
}

// decompress inflates a batch's records with recordbatch's bounded decompression,
// the broker's own.
func decompress(codec uint16, data []byte, limit int) ([]byte, error) {
	if codec > uint16(recordbatch.Zstd) {
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	return recordbatch.Decompress(recordbatch.Codec(codec), data, int64(limit))
}

// decoder reads records from a decompressed batch body.
type decoder struct {
	buf []byte
}

var errShort = errors.New("record runs past the batch")

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.buf)
	if n == 0 {
		return 0, errShort
	}
	if n < 0 {
		return 0, errors.New("varint overflow")
	}
	d.buf = d.buf[n:]
	return v, nil
}

// bytes reads a varint length and that many bytes; -1 is nil.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n == -1 {
		return nil, nil
	}
	if n < -1 {
		return nil, fmt.Errorf("negative length %d", n)
	}
	if n > int64(len(d.buf)) {
		return nil, errShort
	}
	v := d.buf[:n:n]
	d.buf = d.buf[n:]
	return v, nil
}

// record reads one record; its Offset is the offset delta and its Timestamp the
// timestamp delta (as milliseconds since the epoch).
func (d *decoder) record() (Record, error) {
	var r Record
	length, err := d.varint()
	if err != nil {
		return r, err
	}
	if length < 0 || length > int64(len(d.buf)) {
		return r, fmt.Errorf("record length %d for %d bytes left", length, len(d.buf))
	}
	rest := d.buf[length:]
	d.buf = d.buf[:length]
	if len(d.buf) < 1 {
		return r, errShort
	}
	d.buf = d.buf[1:] // attributes, unused
	tsDelta, err := d.varint()
	if err != nil {
		return r, err
	}
	offDelta, err := d.varint()
	if err != nil {
		return r, err
	}
	if offDelta < 0 || offDelta > 1<<31-1 {
		return r, fmt.Errorf("offset delta %d", offDelta)
	}
	if r.Key, err = d.bytes(); err != nil {
		return r, err
	}
	if r.Value, err = d.bytes(); err != nil {
		return r, err
	}
	nh, err := d.varint()
	if err != nil {
		return r, err
	}
	if nh < -1 || nh > int64(len(d.buf)) {
		return r, fmt.Errorf("header count %d for %d bytes left", nh, len(d.buf))
	}
	for i := int64(0); i < nh; i++ {
		var h Header
		if h.Key, err = d.bytes(); err != nil {
			return r, err
		}
		if h.Value, err = d.bytes(); err != nil {
			return r, err
		}
		r.Headers = append(r.Headers, h)
	}
	if len(d.buf) != 0 {
		return r, fmt.Errorf("record length field says %d bytes, %d unread", length, len(d.buf))
	}
	d.buf = rest
	r.Offset, r.Timestamp = offDelta, time.UnixMilli(tsDelta)
	return r, nil
}
