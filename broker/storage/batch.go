package storage

import (
	"fmt"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// The layout of a record batch, its CRC and its validation live in
// internal/recordbatch; storage reads headers (offsets, producer fields, sizes) and
// checks frames, never records.

// checkProducerBatch applies the rules for batches that come from producers on
// top of recordbatch.CheckFrame: the size limit, and no transactional or control
// batches.
func checkProducerBatch(b []byte, maxBytes int32) (recordbatch.Header, error) {
	if int64(len(b)) > int64(maxBytes) {
		return recordbatch.Header{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(b), maxBytes)
	}
	h, err := recordbatch.CheckFrame(b)
	if err != nil {
		return h, err
	}
	return h, checkProducerRules(b, h, maxBytes)
}

// checkProducerRules is checkProducerBatch for a frame already checked, with
// its header.
func checkProducerRules(b []byte, h recordbatch.Header, maxBytes int32) error {
	if int64(len(b)) > int64(maxBytes) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(b), maxBytes)
	}
	if h.IsControl() {
		return fmt.Errorf("%w: control batches may not be produced", ErrInvalidRecord)
	} else if h.IsTransactional() {
		return fmt.Errorf("%w: transactional batches are not supported", ErrInvalidRecord)
	}
	return nil
}
