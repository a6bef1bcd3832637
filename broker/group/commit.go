package group

import (
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit, OffsetFetch and OffsetDelete: the coordinator checks a commit's member and
// generation with the group's Step, then stores the offsets (offsetStore) without holding
// the group's mutex.

func (c *Coordinator) offsetCommit(r *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) kmsg.Response {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	if code := c.available(); code != 0 {
		return setAll(code)
	}
	if r.Group == "" {
		return setAll(errInvalidGroupID)
	}
	ev := decodeCommit(r)
	if cl := c.lookup(r.Group); cl != nil {
		if code := c.askNow(cl, func(from waiterID) event { ev.from = from; return ev }).code; code != 0 {
			return setAll(code)
		}
	} else if ev.generation >= 0 {
		return setAll(errIllegalGeneration)
	}

	now := c.clock.Now().UnixMilli()
	var keys []topicPartition
	var values []offsetValue
	var where []*kmsg.OffsetCommitResponseTopicPartition
	for i, t := range r.Topics {
		topic := c.store.Topic(t.Topic)
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			switch {
			case topic == nil || topic.Partition(p.Partition) == nil:
				rp.ErrorCode = errUnknownTopicOrPartition
				continue
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = errOffsetMetadataTooLarge
				continue
			}
			v := offsetValue{offset: p.Offset, leaderEpoch: -1, commitTime: now}
			if r.Version >= 6 {
				v.leaderEpoch = p.LeaderEpoch
			}
			if p.Metadata != nil {
				v.metadata = *p.Metadata
			}
			keys = append(keys, topicPartition{t.Topic, p.Partition})
			values = append(values, v)
			where = append(where, rp)
		}
	}
	if len(keys) == 0 {
		return resp
	}
	start := time.Now()
	if err := c.offsets.commit(r.Group, keys, values); err != nil {
		c.metrics.commitErrors.Inc()
		c.log.Error("commit offsets", "group", r.Group, "err", err)
		for _, rp := range where {
			rp.ErrorCode = errCoordinatorNotAvailable
		}
		return resp
	}
	c.metrics.commits.Inc()
	c.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	return resp
}

// decodeCommit converts an OffsetCommit's generation and member (its from is set by the
// caller). v0 has no generation or member: it is a simple consumer's commit, accepted only
// while the group has no members, so that it can never move the offsets of a group whose
// members are consuming (their next commits would silently overwrite it, or it theirs).
func decodeCommit(r *kmsg.OffsetCommitRequest) commitEvent {
	ev := commitEvent{generation: r.Generation, memberID: r.MemberID}
	if r.Version == 0 {
		ev.generation, ev.memberID = -1, ""
	}
	if r.Version >= 7 {
		ev.instanceID = nonEmpty(r.InstanceID)
	}
	return ev
}

func (c *Coordinator) offsetFetch(r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	code := c.available()
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			if code != 0 {
				g.ErrorCode = code
				resp.Groups = append(resp.Groups, g)
				continue
			}
			var req []kmsg.OffsetFetchRequestTopic
			all := rg.Topics == nil
			for _, t := range rg.Topics {
				req = append(req, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
			for _, t := range c.fetchOffsets(rg.Group, req, all) {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	if code != 0 {
		resp.ErrorCode = code
		if r.Version < 2 { // no top-level error code: report it per partition
			resp.Topics = c.fetchOffsets("", r.Topics, false)
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return resp
	}
	resp.Topics = c.fetchOffsets(r.Group, r.Topics, r.Topics == nil && r.Version >= 2)
	return resp
}

// fetchOffsets answers an OffsetFetch for one group: the requested partitions (offset -1 for
// those without a commit), or with all every committed partition.
func (c *Coordinator) fetchOffsets(group string, topics []kmsg.OffsetFetchRequestTopic, all bool) []kmsg.OffsetFetchResponseTopic {
	var out []kmsg.OffsetFetchResponseTopic
	part := func(p int32, v offsetValue, ok bool) kmsg.OffsetFetchResponseTopicPartition {
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch, rp.Metadata = -1, -1, strPtr("")
		if ok {
			rp.Offset, rp.LeaderEpoch, rp.Metadata = v.offset, v.leaderEpoch, strPtr(v.metadata)
		}
		return rp
	}
	if all {
		offs := c.offsets.all(group)
		tps := make([]topicPartition, 0, len(offs))
		for tp := range offs {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, func(a, b topicPartition) int {
			if c := strings.Compare(a.topic, b.topic); c != 0 {
				return c
			}
			return int(a.partition - b.partition)
		})
		for _, tp := range tps {
			if len(out) == 0 || out[len(out)-1].Topic != tp.topic {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = tp.topic
				out = append(out, rt)
			}
			rt := &out[len(out)-1]
			rt.Partitions = append(rt.Partitions, part(tp.partition, offs[tp], true))
		}
		return out
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			var v offsetValue
			ok := false
			if group != "" {
				v, ok = c.offsets.get(group, topicPartition{t.Topic, p})
			}
			rt.Partitions = append(rt.Partitions, part(p, v, ok))
		}
		out = append(out, rt)
	}
	return out
}

func (c *Coordinator) offsetDelete(r *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	cl := c.lookup(r.Group)
	if cl == nil && !c.offsets.has(r.Group) {
		resp.ErrorCode = errGroupIDNotFound
		return resp
	}
	var subscribed map[string]bool
	if cl != nil {
		cl.mu.Lock()
		topics, nonConsumer := cl.g.subscribedTopics()
		cl.mu.Unlock()
		if nonConsumer {
			resp.ErrorCode = errNonEmptyGroup
			return resp
		}
		subscribed = topics
	}
	var keys []topicPartition
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if subscribed[t.Topic] {
				rp.ErrorCode = errGroupSubscribedToTopic
			} else {
				keys = append(keys, topicPartition{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if err := c.offsets.remove(r.Group, keys, func(topicPartition, offsetValue) bool { return false }); err != nil {
		c.log.Error("delete offsets", "group", r.Group, "err", err)
		resp.ErrorCode = errCoordinatorNotAvailable
	}
	return resp
}
