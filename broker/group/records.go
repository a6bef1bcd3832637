package group

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/internal/recordbatch"
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

// encodeOffsetKey encodes an offset commit key (version 1).
func encodeOffsetKey(k offsetKey) []byte {
	key := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: k.group, Topic: k.topic, Partition: k.partition}
	return key.AppendTo(nil)
}

// encodeOffsetValue encodes an offset commit value (version 3).
func encodeOffsetValue(v offsetValue) []byte {
	val := kmsg.OffsetCommitValue{Version: offsetValueVersion, Offset: v.offset, LeaderEpoch: v.leaderEpoch, Metadata: v.metadata, CommitTimestamp: v.commitTime}
	return val.AppendTo(nil)
}

// errSkip marks a record that is valid but not an offset commit (for example a group metadata
// record written by Apache Kafka); loading ignores it.
var errSkip = errors.New("not an offset commit record")

// decodeOffsetKey decodes an offset commit key of version 0 or 1; other key versions return
// errSkip.
func decodeOffsetKey(b []byte) (offsetKey, error) {
	if len(b) < 2 {
		return offsetKey{}, errors.New("offset commit key: no version")
	}
	if ver := int16(binary.BigEndian.Uint16(b)); ver != 0 && ver != 1 {
		return offsetKey{}, errSkip
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(b); err != nil {
		return offsetKey{}, fmt.Errorf("offset commit key: %w", err)
	}
	return offsetKey{group: k.Group, topic: k.Topic, partition: k.Partition}, nil
}

// decodeOffsetValue decodes an offset commit value of versions 0 to 4.
func decodeOffsetValue(b []byte) (offsetValue, error) {
	if len(b) < 2 {
		return offsetValue{}, errors.New("offset commit value: no version")
	}
	if ver := int16(binary.BigEndian.Uint16(b)); ver < 0 || ver > 4 {
		return offsetValue{}, fmt.Errorf("offset commit value version %d not supported", ver)
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(b); err != nil {
		return offsetValue{}, fmt.Errorf("offset commit value: %w", err)
	}
	out := offsetValue{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTime: v.CommitTimestamp}
	if v.Version >= 3 {
		out.leaderEpoch = v.LeaderEpoch
	}
	return out, nil
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
	var recs []recordbatch.Record
	size := 0
	flush := func() {
		if len(recs) > 0 {
			batches = append(batches, recordbatch.Build(recordbatch.New(ts, recs...)))
			recs, size = nil, 0
		}
	}
	for _, r := range records {
		recs = append(recs, recordbatch.Record{Key: r.key, Value: r.value})
		size += len(r.key) + len(r.value) + 8
		if size >= maxBatchBytes {
			flush()
		}
	}
	flush()
	return batches
}

// parseBatches calls fn for every record of the whole batches in buf, with the record's
// absolute offset. It returns the number of bytes consumed (whole batches only) and the offset
// after the last whole batch (-1 if none). Corrupt batches are errors.
func parseBatches(buf []byte, fn func(offset int64, key, value []byte) error) (used int, next int64, err error) {
	next = -1
	for len(buf)-used >= recordbatch.LogOverhead {
		b := buf[used:]
		size := recordbatch.Size(b)
		if size < recordbatch.HeaderSize {
			return used, next, fmt.Errorf("batch at byte %d: bad length %d", used, size)
		}
		if int64(len(b)) < size {
			break // partial batch: the caller reads on from here
		}
		b = b[:size]
		base := recordbatch.ParseHeader(b).BaseOffset
		h, err := recordbatch.Records(b, maxDecompressed, func(r recordbatch.Record) error {
			return fn(base+int64(r.OffsetDelta), r.Key, r.Value)
		})
		if err != nil {
			return used, next, fmt.Errorf("batch at byte %d (offset %d): %w", used, h.BaseOffset, err)
		}
		used += len(b)
		next = h.LastOffset() + 1
	}
	return used, next, nil
}

// maxDecompressed bounds what one batch of __consumer_offsets may decompress to
// (logpipe writes them uncompressed; Apache Kafka may not).
const maxDecompressed = 64 << 20
