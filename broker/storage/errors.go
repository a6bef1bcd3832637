package storage

import (
	"errors"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// Sentinel errors. Storage wraps them with context; test with errors.Is. The
// protocol server maps each to its Kafka error code.
var (
	ErrUnknownTopic         = errors.New("unknown topic or partition")
	ErrTopicExists          = errors.New("topic already exists")
	ErrInvalidTopic         = errors.New("invalid topic name")
	ErrInvalidPartitions    = errors.New("invalid number of partitions")
	ErrInvalidConfig        = errors.New("invalid topic config")
	ErrOffsetOutOfRange     = errors.New("offset out of range")
	ErrCorruptMessage       = recordbatch.ErrCorrupt
	ErrMessageTooLarge      = recordbatch.ErrMessageTooLarge
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("producer epoch is older than the current one")
	ErrInvalidRecord        = recordbatch.ErrInvalidRecord
	ErrClosed               = errors.New("storage is closed")
	ErrPolicyViolation      = errors.New("refused by the broker's limits")
)
