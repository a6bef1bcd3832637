// Package recordbatch is the one home of Kafka's record batch v2 (magic 2): its
// layout, its CRC, validation of a batch and of every record in it, iteration over
// records, and a builder.
//
// A batch, as on the wire and on disk (kafka-protocol.md §4):
//
//	baseOffset           int64   0   assigned by the log
//	batchLength          int32   8   bytes after this field
//	partitionLeaderEpoch int32  12
//	magic                int8   16   2
//	crc                  uint32 17   CRC-32C of everything from attributes on
//	attributes           int16  21   codec (bits 0-2), timestamp type (3), transactional (4), control (5)
//	lastOffsetDelta      int32  23
//	baseTimestamp        int64  27
//	maxTimestamp         int64  35
//	producerId           int64  43
//	producerEpoch        int16  51
//	baseSequence         int32  53
//	recordCount          int32  57
//	records                     61   possibly compressed
//
// and a record, all lengths and deltas zig-zag varints:
//
//	length, attributes int8, timestampDelta (varlong), offsetDelta, keyLength, key,
//	valueLength, value, headerCount, headers (keyLength, key, valueLength, value)
//
// Everything that reads a batch a client sent treats each length and count as a
// claim: it is checked against the bytes that are actually there before it is used,
// and decompression stops at a caller-given bound.
package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Layout of the batch header.
const (
	HeaderSize  = 61 // bytes before the records
	LogOverhead = 12 // baseOffset + batchLength: the bytes batchLength does not count

	OffBaseOffset      = 0
	OffBatchLength     = 8
	OffLeaderEpoch     = 12
	OffMagic           = 16
	OffCRC             = 17
	OffAttributes      = 21
	OffLastOffsetDelta = 23
	OffBaseTimestamp   = 27
	OffMaxTimestamp    = 35
	OffProducerID      = 43
	OffProducerEpoch   = 51
	OffBaseSequence    = 53
	OffRecordCount     = 57
)

// Attribute bits.
const (
	AttrCodecMask     = 0x07
	AttrLogAppendTime = 0x08
	AttrTransactional = 0x10
	AttrControl       = 0x20
)

// Codec is a compression codec, as numbered in the attributes.
type Codec uint8

// The codecs Kafka defines.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Errors. Validation errors wrap one of these, so that the broker can answer
// CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE or
// UNSUPPORTED_COMPRESSION_TYPE as Kafka does.
var (
	// ErrCorrupt: the batch frame is broken (sizes, magic, CRC).
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrInvalidRecord: the frame is intact but a record in it is malformed, or
	// the batch decompresses to more than allowed.
	ErrInvalidRecord = errors.New("invalid record")
	// ErrMessageTooLarge: a produced batch is larger than its topic allows.
	ErrMessageTooLarge = errors.New("record batch larger than max.message.bytes")
	// ErrUnsupportedCompression: a produced batch's codec is unknown, or not
	// allowed at its request's version.
	ErrUnsupportedCompression = errors.New("unsupported compression type")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC returns the CRC-32C of a batch as its crc field must hold it: over
// everything from the attributes on. b must hold at least HeaderSize bytes.
func CRC(b []byte) uint32 { return crc32.Checksum(b[OffAttributes:], castagnoli) }

// Checksum is CRC-32C (Castagnoli) of b, the checksum Kafka's batches use.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Header is a decoded batch header.
type Header struct {
	BaseOffset           int64
	Length               int64 // whole batch, including the LogOverhead bytes
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// ParseHeader reads the header of the batch at the start of b, which must hold at
// least HeaderSize bytes. It checks nothing.
func ParseHeader(b []byte) Header {
	_ = b[HeaderSize-1]
	return Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[OffBaseOffset:])),
		Length:               int64(int32(binary.BigEndian.Uint32(b[OffBatchLength:]))) + LogOverhead,
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[OffLeaderEpoch:])),
		Magic:                int8(b[OffMagic]),
		CRC:                  binary.BigEndian.Uint32(b[OffCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[OffAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[OffLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[OffBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[OffMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[OffProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[OffProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[OffBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[OffRecordCount:])),
	}
}

// Size returns the size of the batch at the start of b from its batchLength
// field, or -1 if b is too short to hold that field. The size is a claim: it is
// not checked against len(b).
func Size(b []byte) int64 {
	if len(b) < OffBatchLength+4 {
		return -1
	}
	return int64(int32(binary.BigEndian.Uint32(b[OffBatchLength:]))) + LogOverhead
}

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the batch's compression codec.
func (h Header) Codec() Codec { return Codec(h.Attributes & AttrCodecMask) }

// IsControl reports whether the batch is a control batch (transaction markers).
func (h Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// IsTransactional reports whether the batch belongs to a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// CheckFrame checks that b is exactly one well-formed batch frame: its length, magic,
// CRC, record count and codec. It does not look at the records; see Validate.
func CheckFrame(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, a batch header alone is %d", ErrCorrupt, len(b), HeaderSize)
	}
	h := ParseHeader(b)
	if h.Length != int64(len(b)) {
		return h, fmt.Errorf("%w: batchLength says %d bytes, got %d", ErrCorrupt, h.Length, len(b))
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, only record batch v2 (magic 2) is supported", ErrCorrupt, h.Magic)
	}
	if got := CRC(b); h.CRC != got {
		return h, fmt.Errorf("%w: CRC-32C %08x, computed %08x", ErrCorrupt, h.CRC, got)
	}
	if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrCorrupt, h.LastOffsetDelta, h.NumRecords)
	}
	if h.Codec() > Zstd {
		return h, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, h.Codec())
	}
	return h, nil
}

// SetBaseOffset assigns the batch its offsets and clears its leader epoch. Neither
// field is covered by the CRC.
func SetBaseOffset(b []byte, base int64) {
	binary.BigEndian.PutUint64(b[OffBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[OffLeaderEpoch:], 0)
}

// Validate checks the frame of b (CheckFrame) and then every record in it, as Kafka
// does on produce: the records are decompressed, never into more than
// maxUncompressed bytes (and without holding them all in memory), and each record's
// framing, varints, lengths, header count and offset delta are checked; the number
// of records must match the header and no byte may be left over. A batch that
// passes can be read by any client.
func Validate(b []byte, maxUncompressed int64) (Header, error) {
	h, err := CheckFrame(b)
	if err != nil {
		return h, err
	}
	return h, validateRecords(b, h, maxUncompressed)
}

// validateRecords walks the records of b, whose frame is checked and whose
// header is h, decompressing them as a stream into at most max bytes.
func validateRecords(b []byte, h Header, max int64) error {
	if h.IsControl() {
		// Control records have their own schema; producers may not send them and
		// the broker writes none, so they are not walked here.
		return nil
	}
	r, release, err := openRecords(h.Codec(), b[HeaderSize:], max)
	if err != nil {
		return fmt.Errorf("%w: %s records: %v", ErrInvalidRecord, h.Codec(), err)
	}
	defer release()
	w := walker{r: r, n: h.NumRecords, lastDelta: h.LastOffsetDelta, prev: -1}
	return w.walk(nil)
}
