package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// handleListOffsets answers ListOffsets (v1+): -1 = latest (high watermark, which
// is also the last stable offset), -2 = earliest, else the first offset whose
// timestamp is at or after the given one.
func (s *Server) handleListOffsets(r *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		t := s.store.Topic(rt.Topic)
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Offset, op.Timestamp, op.LeaderEpoch = -1, -1, 0
			var part *storage.Partition
			if t != nil {
				part = t.Partition(rp.Partition)
			}
			switch {
			case part == nil:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				op.LeaderEpoch = -1
			case rp.Timestamp == -1:
				op.Offset = part.HighWatermark()
			case rp.Timestamp == -2:
				op.Offset = part.LogStartOffset()
			case rp.Timestamp < 0:
				op.ErrorCode = kerr.InvalidRequest.Code
			default:
				off, ts, ok, err := offsetForTimestamp(part, rp.Timestamp)
				switch {
				case err != nil:
					op.ErrorCode = errorCode(err)
				case ok:
					op.Offset, op.Timestamp = off, ts
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
