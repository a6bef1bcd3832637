package recordbatch

import "fmt"

// ProduceRules are the limits a produced batch is checked against.
type ProduceRules struct {
	// MaxBytes is the largest batch accepted (the topic's max.message.bytes).
	MaxBytes int64
	// NoZstd refuses zstd, which Produce requests before version 7 may not use.
	NoZstd bool
	// MaxUncompressed, when above zero, has every record walked (as Validate
	// does), decompressed into at most this many bytes. Zero checks the frame
	// alone (as CheckFrame does), for batches the broker built itself.
	MaxUncompressed int64
	// Decompressing, when set, is called before compressed records are walked,
	// and the function it returns once they are: the broker bounds with it how
	// many batches decompress at once.
	Decompressing func() (done func())
}

// CheckProduced checks that b is exactly one batch that a producer may append,
// and returns its header. It holds every produce rule, in this order: b is one
// whole batch; no larger than MaxBytes; its codec known and allowed; its frame
// sound (CheckFrame); neither a control batch (producers may not send them) nor
// a transactional one (transactions are not supported); and, with
// MaxUncompressed, every record well formed (Validate). Errors wrap ErrCorrupt,
// ErrInvalidRecord, ErrMessageTooLarge or ErrUnsupportedCompression.
func CheckProduced(b []byte, r ProduceRules) (Header, error) {
	size := Size(b)
	switch {
	case len(b) < HeaderSize || size < HeaderSize || size > int64(len(b)):
		return Header{}, fmt.Errorf("%w: batch length %d does not match %d bytes of records", ErrCorrupt, size, len(b))
	case size < int64(len(b)):
		return Header{}, fmt.Errorf("%w: more than one record batch in a produce v3+ partition", ErrInvalidRecord)
	case int64(len(b)) > r.MaxBytes:
		return Header{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(b), r.MaxBytes)
	}
	switch codec := Codec(b[OffAttributes+1] & AttrCodecMask); {
	case codec > Zstd:
		// A frame with an unknown codec is corrupt, and Kafka answers it as unsupported.
		return Header{}, fmt.Errorf("%w: %w: unknown compression codec %d", ErrUnsupportedCompression, ErrCorrupt, codec)
	case codec == Zstd && r.NoZstd:
		return Header{}, fmt.Errorf("%w: zstd needs Produce v7 or later", ErrUnsupportedCompression)
	}
	h, err := CheckFrame(b)
	if err != nil {
		return h, err
	}
	switch {
	case h.IsControl():
		return h, fmt.Errorf("%w: control batches may not be produced", ErrInvalidRecord)
	case h.IsTransactional():
		return h, fmt.Errorf("%w: transactional batches are not supported", ErrInvalidRecord)
	case r.MaxUncompressed <= 0:
		return h, nil
	}
	if h.Codec() != None && r.Decompressing != nil {
		defer r.Decompressing()()
	}
	return h, validateRecords(b, h, r.MaxUncompressed)
}
