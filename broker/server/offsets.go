package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/storage"
)

// handleListOffsets answers ListOffsets (v1+): -1 = latest (high watermark, which
// is also the last stable offset), -2 = earliest, else the first offset whose
// timestamp is at or after the given one. A partition listed more than once is
// answered INVALID_REQUEST at each place, as Kafka does, and costs no look-up: a
// request cannot make the broker read the same batch over and over.
func (s *Server) handleListOffsets(r *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	type tp struct {
		topic     string
		partition int32
	}
	seen := make(map[tp]int)
	dups := 0
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			seen[tp{rt.Topic, rp.Partition}]++
		}
	}
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
			case seen[tp{rt.Topic, rp.Partition}] > 1:
				op.ErrorCode = kerr.InvalidRequest.Code
				op.LeaderEpoch = -1
				dups++
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
	if dups > 0 {
		s.metrics.limits.WithLabelValues("duplicate_partition").Add(float64(dups))
	}
	return resp
}
