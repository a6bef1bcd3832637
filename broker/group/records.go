package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record schemas of __consumer_offsets, as Apache Kafka writes them (kafka-protocol.md §7.2):
//
//	offset commit key,   version 1: group string, topic string, partition int32
//	offset commit value, version 3: offset int64, leaderEpoch int32, metadata string, commitTimestamp int64
//	group metadata key,  version 2: group string (written by Kafka; logpipe reads past it)
//
// Strings are int16-length-prefixed. A record without a value (a tombstone) deletes its key.
const (
	offsetKeyVersion   int16 = 1
	groupKeyVersion    int16 = 2
	offsetValueVersion int16 = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// offsetKey names one committed offset.
type offsetKey struct {
	group     string
	topic     string
	partition int32
}

// offsetValue is one committed offset.
type offsetValue struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // unix milliseconds
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// encodeOffsetKey encodes an offset commit key (version 1).
func encodeOffsetKey(k offsetKey) []byte {
	b := make([]byte, 0, 2+2+len(k.group)+2+len(k.topic)+4)
	b = binary.BigEndian.AppendUint16(b, uint16(offsetKeyVersion))
	b = appendString(b, k.group)
	b = appendString(b, k.topic)
	return binary.BigEndian.AppendUint32(b, uint32(k.partition))
}

// encodeOffsetValue encodes an offset commit value (version 3).
func encodeOffsetValue(v offsetValue) []byte {
	b := make([]byte, 0, 2+8+4+2+len(v.metadata)+8)
	b = binary.BigEndian.AppendUint16(b, uint16(offsetValueVersion))
	b = binary.BigEndian.AppendUint64(b, uint64(v.offset))
	b = binary.BigEndian.AppendUint32(b, uint32(v.leaderEpoch))
	b = appendString(b, v.metadata)
	return binary.BigEndian.AppendUint64(b, uint64(v.commitTime))
}

// errSkip marks a record that is valid but not an offset commit (for example a group metadata
// record written by Apache Kafka); loading ignores it.
var errSkip = errors.New("not an offset commit record")

type reader struct {
	b   []byte
	err error
}

func (r *reader) int16() int16 {
	if r.err != nil || len(r.b) < 2 {
		r.err = errors.New("short int16")
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *reader) int32() int32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errors.New("short int32")
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) int64() int64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errors.New("short int64")
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *reader) string() string {
	n := r.int16()
	if r.err != nil {
		return ""
	}
	if n < 0 || int(n) > len(r.b) {
		r.err = fmt.Errorf("bad string length %d", n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeOffsetKey decodes an offset commit key of version 0 or 1; other key versions return
// errSkip.
func decodeOffsetKey(b []byte) (offsetKey, error) {
	r := reader{b: b}
	ver := r.int16()
	if r.err != nil {
		return offsetKey{}, fmt.Errorf("key: %w", r.err)
	}
	if ver != 0 && ver != 1 {
		return offsetKey{}, errSkip
	}
	k := offsetKey{group: r.string(), topic: r.string(), partition: r.int32()}
	if r.err != nil {
		return offsetKey{}, fmt.Errorf("offset commit key: %w", r.err)
	}
	return k, nil
}

// decodeOffsetValue decodes an offset commit value of versions 0 to 3 (version 4, flexible, is
// not written by logpipe and is rejected).
func decodeOffsetValue(b []byte) (offsetValue, error) {
	r := reader{b: b}
	ver := r.int16()
	if r.err != nil {
		return offsetValue{}, fmt.Errorf("value: %w", r.err)
	}
	if ver < 0 || ver > 3 {
		return offsetValue{}, fmt.Errorf("offset commit value version %d not supported", ver)
	}
	v := offsetValue{offset: r.int64(), leaderEpoch: -1}
	if ver >= 3 {
		v.leaderEpoch = r.int32()
	}
	v.metadata = r.string()
	v.commitTime = r.int64()
	if ver == 1 {
		r.int64() // expireTimestamp
	}
	if r.err != nil {
		return offsetValue{}, fmt.Errorf("offset commit value: %w", r.err)
	}
	return v, nil
}

// kv is one record to write: a nil value is a tombstone.
type kv struct {
	key, value []byte
}

// maxBatchBytes bounds the records of one batch (well under the default max.message.bytes).
const maxBatchBytes = 512 << 10

// buildBatches encodes records as uncompressed v2 record batches of at most about
// maxBatchBytes each, with timestamp ts (unix ms), producer id -1 and base offset 0 (the log
// assigns offsets).
func buildBatches(records []kv, ts int64) [][]byte {
	var batches [][]byte
	var body []byte
	n := int32(0)
	flush := func() {
		if n == 0 {
			return
		}
		batches = append(batches, encodeBatch(body, n, ts))
		body, n = nil, 0
	}
	for _, r := range records {
		rec := kmsg.Record{OffsetDelta: n, Key: r.key, Value: r.value}
		// The length prefix counts the bytes after itself: encode once with length 0
		// (one varint byte) to measure.
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		body = rec.AppendTo(body)
		n++
		if len(body) >= maxBatchBytes {
			flush()
		}
	}
	flush()
	return batches
}

func encodeBatch(records []byte, n int32, ts int64) []byte {
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      n - 1,
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           n,
		Records:              records,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

// batchHeaderLen is the size of a v2 record batch header.
const batchHeaderLen = 61

// parseBatches calls fn for every record of the whole batches in buf, with the record's
// absolute offset. It returns the number of bytes consumed (whole batches only) and the offset
// after the last whole batch (-1 if none). Compressed or corrupt batches are errors: logpipe
// writes none of them.
func parseBatches(buf []byte, fn func(offset int64, key, value []byte) error) (used int, next int64, err error) {
	next = -1
	for len(buf)-used >= 12 {
		b := buf[used:]
		length := int(int32(binary.BigEndian.Uint32(b[8:])))
		if length < batchHeaderLen-12 {
			return used, next, fmt.Errorf("batch at byte %d: bad length %d", used, length)
		}
		if len(b) < 12+length {
			break // partial batch: the caller reads on from here
		}
		b = b[:12+length]
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b); err != nil {
			return used, next, fmt.Errorf("batch at byte %d: %w", used, err)
		}
		if batch.Magic != 2 {
			return used, next, fmt.Errorf("batch at offset %d: magic %d", batch.FirstOffset, batch.Magic)
		}
		if got := crc32.Checksum(b[21:], castagnoli); got != uint32(batch.CRC) {
			return used, next, fmt.Errorf("batch at offset %d: crc mismatch", batch.FirstOffset)
		}
		if batch.Attributes&0x07 != 0 {
			return used, next, fmt.Errorf("batch at offset %d: compressed (attributes %#x)", batch.FirstOffset, batch.Attributes)
		}
		if batch.Attributes&0x20 != 0 { // control batch: nothing to apply
			used += len(b)
			next = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
			continue
		}
		recs := batch.Records
		for i := int32(0); i < batch.NumRecords; i++ {
			l, sz := binary.Varint(recs)
			if sz <= 0 || l < 0 || int64(len(recs)-sz) < l {
				return used, next, fmt.Errorf("batch at offset %d: record %d: bad length", batch.FirstOffset, i)
			}
			var rec kmsg.Record
			if err := rec.ReadFrom(recs[:sz+int(l)]); err != nil {
				return used, next, fmt.Errorf("batch at offset %d: record %d: %w", batch.FirstOffset, i, err)
			}
			recs = recs[sz+int(l):]
			if err := fn(batch.FirstOffset+int64(rec.OffsetDelta), rec.Key, rec.Value); err != nil {
				return used, next, err
			}
		}
		used += len(b)
		next = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
	}
	return used, next, nil
}
