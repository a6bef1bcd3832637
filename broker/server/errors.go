package server

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/logpipe/logpipe/broker/storage"
	"github.com/logpipe/logpipe/internal/recordbatch"
)

// errorCode maps a storage error to the Kafka error code sent to clients. Errors
// that are not the client's fault become KAFKA_STORAGE_ERROR.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, storage.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, storage.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, storage.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, storage.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, recordbatch.ErrUnsupportedCompression): // before corrupt: an unknown codec is both
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, storage.ErrCorruptMessage): // = recordbatch.ErrCorrupt
		return kerr.CorruptMessage.Code
	case errors.Is(err, storage.ErrMessageTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, storage.ErrInvalidRecord): // = recordbatch.ErrInvalidRecord
		return kerr.InvalidRecord.Code
	case errors.Is(err, errInvalidRequest):
		return kerr.InvalidRequest.Code
	case errors.Is(err, errInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, errInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, storage.ErrPolicyViolation):
		return kerr.PolicyViolation.Code
	case errors.Is(err, errInternalTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, errTopicDenied):
		return kerr.TopicAuthorizationFailed.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

// clientError reports whether code blames the request rather than the broker.
func clientError(code int16) bool {
	return code != kerr.KafkaStorageError.Code
}

// errMessage returns a pointer to err's text for the ErrorMessage fields, nil for nil.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
