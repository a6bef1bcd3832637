package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record batch v2 layout (magic 2), as on the wire and on disk.
const (
	batchHeaderSize = 61 // bytes before the records
	logOverhead     = 12 // baseOffset + batchLength: the bytes batchLength does not count

	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordsCount    = 57

	attrCodecMask     = 0x07
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the part of a batch header storage needs.
type batchHeader struct {
	baseOffset      int64
	length          int64 // whole batch, including the 12 bytes of log overhead
	lastOffsetDelta int32
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
}

func (h batchHeader) lastOffset() int64 { return h.baseOffset + int64(h.lastOffsetDelta) }

// parseHeader reads the header fields of the batch at the start of b, which must hold
// at least batchHeaderSize bytes. It checks nothing.
func parseHeader(b []byte) batchHeader {
	return batchHeader{
		baseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		length:          int64(int32(binary.BigEndian.Uint32(b[offBatchLength:]))) + logOverhead,
		lastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		maxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		producerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		producerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		baseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
	}
}

// validateBatch checks that b is exactly one well-formed record batch v2 and returns
// its header. It is used for batches from producers and, at recovery, for batches
// read back from disk.
func validateBatch(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderSize {
		return batchHeader{}, fmt.Errorf("%w: %d bytes, a batch header alone is %d", ErrCorruptMessage, len(b), batchHeaderSize)
	}
	h := parseHeader(b)
	if h.length != int64(len(b)) {
		return h, fmt.Errorf("%w: batchLength says %d bytes, got %d", ErrCorruptMessage, h.length, len(b))
	}
	if b[offMagic] != 2 {
		return h, fmt.Errorf("%w: magic %d, only record batch v2 (magic 2) is supported", ErrCorruptMessage, b[offMagic])
	}
	if want, got := binary.BigEndian.Uint32(b[offCRC:]), crc32.Checksum(b[offAttributes:], castagnoli); want != got {
		return h, fmt.Errorf("%w: CRC-32C %08x, computed %08x", ErrCorruptMessage, want, got)
	}
	count := int32(binary.BigEndian.Uint32(b[offRecordsCount:]))
	if count <= 0 || h.lastOffsetDelta != count-1 {
		return h, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrCorruptMessage, h.lastOffsetDelta, count)
	}
	if b[offAttributes+1]&attrCodecMask > 4 {
		return h, fmt.Errorf("%w: unknown compression codec %d", ErrCorruptMessage, b[offAttributes+1]&attrCodecMask)
	}
	return h, nil
}

// checkProducerBatch applies the rules for batches that come from producers, on top
// of validateBatch: size limit, and no transactional or control batches.
func checkProducerBatch(b []byte, maxBytes int32) (batchHeader, error) {
	if int64(len(b)) > int64(maxBytes) {
		return batchHeader{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(b), maxBytes)
	}
	h, err := validateBatch(b)
	if err != nil {
		return h, err
	}
	if attr := b[offAttributes+1]; attr&attrControl != 0 {
		return h, fmt.Errorf("%w: control batches may not be produced", ErrInvalidRecord)
	} else if attr&attrTransactional != 0 {
		return h, fmt.Errorf("%w: transactional batches are not supported", ErrInvalidRecord)
	}
	return h, nil
}

// setBaseOffset assigns the batch its offsets. Neither field is covered by the CRC.
func setBaseOffset(b []byte, base int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0)
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
