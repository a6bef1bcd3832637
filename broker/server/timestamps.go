package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/logpipe/logpipe/broker/storage"
)

// maxDecompressed bounds what a batch may decompress to while looking up a
// timestamp (a decompression bomb must not exhaust memory).
const maxDecompressed = 32 << 20

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
	if sl.Len() < batchHeaderSize {
		return 0, 0, false
	}
	var hdr [batchHeaderSize]byte
	if _, err := sl.File().ReadAt(hdr[:], sl.Pos()); err != nil {
		return 0, 0, false
	}
	size := int64(int32(binary.BigEndian.Uint32(hdr[batchLengthOffset:]))) + 12
	if size < batchHeaderSize || size > sl.Len() {
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

var errNoRecord = errors.New("no record at or after the timestamp")

// findTimestamp scans the records of one batch for the first with timestamp >= ts.
func findTimestamp(batch []byte, ts int64) (offset, timestamp int64, err error) {
	base := int64(binary.BigEndian.Uint64(batch))
	baseTs := int64(binary.BigEndian.Uint64(batch[27:]))
	count := int32(binary.BigEndian.Uint32(batch[batchCountOffset:]))
	records, err := decompress(batch[batchAttrOffset+1]&7, batch[batchHeaderSize:])
	if err != nil {
		return 0, 0, err
	}
	for range count {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return 0, 0, errors.New("malformed record")
		}
		rec := records[n : n+int(length)]
		records = records[n+int(length):]
		if len(rec) < 1 {
			return 0, 0, errors.New("malformed record")
		}
		rec = rec[1:] // attributes
		tsDelta, n := binary.Varint(rec)
		if n <= 0 {
			return 0, 0, errors.New("malformed record")
		}
		offDelta, n2 := binary.Varint(rec[n:])
		if n2 <= 0 {
			return 0, 0, errors.New("malformed record")
		}
		if baseTs+tsDelta >= ts {
			return base + offDelta, baseTs + tsDelta, nil
		}
	}
	return 0, 0, errNoRecord
}

// decompress returns the records of a batch compressed with codec.
func decompress(codec byte, src []byte) ([]byte, error) {
	var r io.Reader
	switch codec {
	case 0:
		return src, nil
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case 2:
		return xerial.DecodeCapped(make([]byte, 0, min(maxDecompressed, 64*len(src)+64<<10)), src)
	case 3:
		r = lz4.NewReader(bytes.NewReader(src))
	case 4:
		zr, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxDecompressed {
		return nil, errors.New("batch decompresses to more than 32 MiB")
	}
	return out, nil
}
