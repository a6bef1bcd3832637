package server

import (
	"errors"

	"github.com/logpipe/logpipe/broker/storage"
	"github.com/logpipe/logpipe/internal/recordbatch"
)

// maxDecompressed bounds what a batch may decompress to while looking up a
// timestamp (a decompression bomb must not exhaust memory).
const maxDecompressed = DefaultMaxUncompressedBatchBytes

// offsetForTimestamp returns the offset and timestamp of the first record whose
// timestamp is at or after ts, as Kafka does. The storage finds the batch through
// the time index; the record is then found in that batch (decompressing it if
// needed). When the batch cannot be read record by record, the batch's first
// offset and max timestamp stand.
func offsetForTimestamp(p *storage.Partition, ts int64) (offset, timestamp int64, ok bool, err error) {
	offset, timestamp, ok, err = p.OffsetForTimestamp(ts)
	if !ok || err != nil {
		return offset, timestamp, ok, err
	}
	if o, t, found := recordAtTimestamp(p, offset, ts); found {
		return o, t, true, nil
	}
	return offset, timestamp, true, nil
}

// recordAtTimestamp reads the batch containing offset and returns its first
// record with a timestamp at or after ts.
func recordAtTimestamp(p *storage.Partition, offset, ts int64) (int64, int64, bool) {
	sl, err := p.Read(offset, 1)
	if err != nil {
		return 0, 0, false
	}
	defer sl.Release()
	if sl.Len() < recordbatch.HeaderSize {
		return 0, 0, false
	}
	var hdr [recordbatch.HeaderSize]byte
	if _, err := sl.File().ReadAt(hdr[:], sl.Pos()); err != nil {
		return 0, 0, false
	}
	size := recordbatch.Size(hdr[:])
	if size < recordbatch.HeaderSize || size > sl.Len() {
		return 0, 0, false
	}
	batch := make([]byte, size)
	if _, err := sl.File().ReadAt(batch, sl.Pos()); err != nil {
		return 0, 0, false
	}
	o, t, err := findTimestamp(batch, ts)
	if err != nil {
		return 0, 0, false
	}
	return o, t, true
}

var (
	errNoRecord = errors.New("no record at or after the timestamp")
	errFound    = errors.New("found")
)

// findTimestamp scans the records of one batch for the first with timestamp >= ts.
func findTimestamp(batch []byte, ts int64) (offset, timestamp int64, err error) {
	if len(batch) < recordbatch.HeaderSize {
		return 0, 0, errNoRecord
	}
	h := recordbatch.ParseHeader(batch)
	_, err = recordbatch.Records(batch, maxDecompressed, func(r recordbatch.Record) error {
		if t := h.BaseTimestamp + r.TimestampDelta; t >= ts {
			offset, timestamp = h.BaseOffset+int64(r.OffsetDelta), t
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return offset, timestamp, nil
	case err != nil:
		return 0, 0, err
	}
	return 0, 0, errNoRecord
}
