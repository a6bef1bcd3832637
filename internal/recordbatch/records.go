package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Record is one record of a batch. A nil Key or Value is null.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte
	Value          []byte
	Headers        []RecordHeader
}

// RecordHeader is one header of a record. A nil Value is null; so is a nil Key,
// which only a lenient walk accepts.
type RecordHeader struct {
	Key   []byte
	Value []byte
}

// Strictness chooses which records a walk accepts. Either way every length and
// count is a claim, checked against the bytes there before it is used.
type Strictness uint8

const (
	// Strict is Kafka's rule for the records a producer sends, and so the
	// broker's for all it stores: varints no longer than their type needs (5
	// bytes, 10 for the timestamp delta) and within it, offset deltas 0, 1, 2, ...,
	// header keys not null.
	Strict Strictness = iota
	// Lenient accepts what any Kafka broker may serve a consumer: offset deltas
	// with gaps (a compacted topic's) from 0 to the batch's last offset delta,
	// varints of up to 10 bytes as encoding/binary reads them, null header keys
	// and a header count of -1.
	Lenient
)

// Records calls fn for each record of the batch b, in order, after checking its
// frame (CheckFrame). Compressed records are decompressed into at most
// maxUncompressed bytes. The slices fn sees alias b or a decompression buffer and
// are valid only during the call. Control batches have no records for fn.
func Records(b []byte, maxUncompressed int64, fn func(Record) error) (Header, error) {
	h, err := CheckFrame(b)
	if err != nil {
		return h, err
	}
	if h.IsControl() {
		return h, nil
	}
	raw, err := Decompress(h.Codec(), b[HeaderSize:], maxUncompressed)
	if err != nil {
		return h, fmt.Errorf("%w: %s records: %v", ErrInvalidRecord, h.Codec(), err)
	}
	return h, Walk(raw, h, Strict, fn)
}

// Walk calls fn for each record in recs, the records (decompressed) of a batch
// whose header is h: h.NumRecords of them, each checked as s says, and no byte
// left after the last. The slices fn sees alias recs. A nil fn only checks. Errors
// of the records wrap ErrInvalidRecord; fn's are returned as they are.
func Walk(recs []byte, h Header, s Strictness, fn func(Record) error) error {
	w := walker{r: reader{b: recs}, lenient: s == Lenient, n: h.NumRecords, lastDelta: h.LastOffsetDelta, prev: -1}
	return w.walk(fn)
}

// walker is the one reader of records, for Validate, Records and Walk.
type walker struct {
	r         reader
	lenient   bool
	n         int32 // the records the header states
	lastDelta int32 // the header's last offset delta, the largest a lenient walk accepts
	prev      int64 // the offset delta of the record before, -1 before the first
}

// walk reads the n records, handing each to fn unless fn is nil, and then checks
// that nothing is left.
func (w *walker) walk(fn func(Record) error) error {
	keep := fn != nil
	for i := int32(0); i < w.n; i++ {
		rec, err := w.record(i, keep)
		if err != nil {
			return fmt.Errorf("%w: record %d of %d: %v", ErrInvalidRecord, i, w.n, err)
		}
		if keep {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	if err := w.r.end(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	return nil
}

// record reads record number i. Each length is checked against the bytes the
// record says it has before anything is skipped or kept, and no field is read
// past the record's end.
func (w *walker) record(i int32, keep bool) (Record, error) {
	var r Record
	length, err := w.varint(5, math.MaxInt64)
	if err != nil {
		return r, fmt.Errorf("length: %w", err)
	}
	if length < 6 { // attributes plus five one-byte varints
		return r, fmt.Errorf("length %d is below the minimum of 6", length)
	}
	end := w.r.pos() + length

	p := w.r.peek(1, length)
	if len(p) == 0 {
		return r, w.r.short()
	}
	r.Attributes = int8(p[0])
	w.r.off++
	if r.TimestampDelta, err = w.varint(10, end-w.r.pos()); err != nil {
		return r, fmt.Errorf("timestampDelta: %w", err)
	}
	od, err := w.varint(5, end-w.r.pos())
	if err != nil {
		return r, fmt.Errorf("offsetDelta: %w", err)
	}
	switch {
	case !w.lenient && od != int64(i):
		return r, fmt.Errorf("offsetDelta %d, want %d (deltas must be consecutive)", od, i)
	case w.lenient && (od <= w.prev || od > int64(w.lastDelta)):
		// Compaction leaves gaps, never a repeat: two records at one offset would
		// share a document id.
		return r, fmt.Errorf("offsetDelta %d after %d, outside the batch's 0 to %d or not growing", od, w.prev, w.lastDelta)
	}
	w.prev = od
	r.OffsetDelta = int32(od)
	if r.Key, err = w.bytes(end, keep, true); err != nil {
		return r, fmt.Errorf("key: %w", err)
	}
	if r.Value, err = w.bytes(end, keep, true); err != nil {
		return r, fmt.Errorf("value: %w", err)
	}
	n, err := w.varint(5, end-w.r.pos())
	if err != nil {
		return r, fmt.Errorf("header count: %w", err)
	}
	left := end - w.r.pos()
	if w.lenient && n == -1 {
		n = 0
	}
	if n < 0 || n > left/2 { // a header is at least two bytes
		return r, fmt.Errorf("header count %d with %d bytes left", n, left)
	}
	if keep && n > 0 {
		r.Headers = make([]RecordHeader, 0, n)
	}
	for j := int64(0); j < n; j++ {
		k, err := w.bytes(end, keep, w.lenient)
		if err != nil {
			return r, fmt.Errorf("header %d key: %w", j, err)
		}
		v, err := w.bytes(end, keep, true)
		if err != nil {
			return r, fmt.Errorf("header %d value: %w", j, err)
		}
		if keep {
			r.Headers = append(r.Headers, RecordHeader{Key: k, Value: v})
		}
	}
	if l := end - w.r.pos(); l != 0 {
		return r, fmt.Errorf("length %d does not match its fields (%d bytes off)", length, l)
	}
	return r, nil
}

// bytes reads a varint length and that many bytes, which must fit before the
// record's end. A length of -1 is null where nullable.
func (w *walker) bytes(end int64, keep, nullable bool) ([]byte, error) {
	n, err := w.varint(5, end-w.r.pos())
	if err != nil {
		return nil, err
	}
	if n == -1 && nullable {
		return nil, nil
	}
	if left := end - w.r.pos(); n < 0 || n > left {
		return nil, fmt.Errorf("length %d with %d bytes left in the record", n, left)
	}
	b, err := w.r.take(n)
	if err != nil {
		return nil, err
	}
	if keep && b == nil {
		b = []byte{}
	}
	return b, nil
}

// varint reads a zig-zag varint from the next limit bytes. A strict walk reads at
// most maxBytes bytes (5 for Kafka's varint, 10 for its varlong) and refuses a
// varint outside an int32, as Kafka does; a lenient one reads as encoding/binary
// does. A one-byte varint, the common case, is decoded here, inlined.
func (w *walker) varint(maxBytes int, limit int64) (int64, error) {
	if off := w.r.off; off < len(w.r.b) && limit > 0 && w.r.b[off] < 0x80 {
		w.r.off = off + 1
		c := int64(w.r.b[off])
		return c>>1 ^ -(c & 1), nil
	}
	return w.longVarint(maxBytes, limit)
}

// longVarint is varint for the varints not decoded inline.
func (w *walker) longVarint(maxBytes int, limit int64) (int64, error) {
	p := w.r.peek(binary.MaxVarintLen64, limit)
	if w.lenient {
		v, n := binary.Varint(p)
		switch {
		case n == 0:
			return 0, w.r.short()
		case n < 0:
			return 0, errors.New("varint overflow")
		}
		w.r.off += n
		return v, nil
	}
	var u uint64
	for i := 0; i < maxBytes; i++ {
		if i == len(p) {
			return 0, w.r.short()
		}
		c := p[i]
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			v := int64(u>>1) ^ -int64(u&1)
			if maxBytes == 5 && (v < math.MinInt32 || v > math.MaxInt32) {
				return 0, errors.New("varint overflows int32")
			}
			w.r.off += i + 1
			return v, nil
		}
	}
	return 0, fmt.Errorf("varint longer than %d bytes", maxBytes)
}
