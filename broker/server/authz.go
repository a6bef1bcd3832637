package server

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/acl"
)

// Authorization. With [acl] enabled, every request is checked against the
// ACLs for the connection's principal and host, as Kafka checks it (the table
// is in broker/acl's package doc). Denied parts of a request are answered with
// Kafka's error codes (TOPIC_, GROUP_ or CLUSTER_AUTHORIZATION_FAILED) and the
// rest is served: a request is screened before its handler runs (denied
// entries removed) and the handler's response completed after.

// Resource and operation names, shorter.
const (
	rtTopic   = kmsg.ACLResourceTypeTopic
	rtGroup   = kmsg.ACLResourceTypeGroup
	rtCluster = kmsg.ACLResourceTypeCluster

	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

// errTopicDenied is answered TOPIC_AUTHORIZATION_FAILED.
var errTopicDenied = errors.New("topic authorization failed")

var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
)

// authorizing reports whether ACLs are checked at all.
func (c *conn) authorizing() bool {
	a := c.s.cfg.ACL
	return a != nil && a.Enabled()
}

// can reports whether the connection's principal may do op on a resource.
func (c *conn) can(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if !c.authorizing() {
		return true
	}
	return c.s.cfg.ACL.Authorize(c.principal, c.host, op, rt, name)
}

// canCluster reports whether the principal may do op on the cluster.
func (c *conn) canCluster(op kmsg.ACLOperation) bool { return c.can(op, rtCluster, acl.ClusterName) }

// canCreateTopic is CREATE on the cluster or on the topic.
func (c *conn) canCreateTopic(name string) bool {
	return c.canCluster(opCreate) || c.can(opCreate, rtTopic, name)
}

// screen checks req before its handler runs. It returns a complete answer when
// the whole request is denied; otherwise it removes the denied entries from req
// and returns a function that adds their answers to the handler's response
// (nil when nothing was removed).
func (c *conn) screen(req kmsg.Request) (deny kmsg.Response, complete func(kmsg.Response)) {
	if !c.authorizing() {
		return nil, nil
	}
	switch r := req.(type) {
	case *kmsg.ListOffsetsRequest:
		var denied []kmsg.ListOffsetsRequestTopic
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			if c.can(opDescribe, rtTopic, t.Topic) {
				kept = append(kept, t)
			} else {
				denied = append(denied, t)
			}
		}
		r.Topics = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ListOffsetsResponse)
			for _, t := range denied {
				ot := kmsg.NewListOffsetsResponseTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewListOffsetsResponseTopicPartition()
					op.Partition, op.ErrorCode, op.Offset, op.Timestamp = p.Partition, topicDenied, -1, -1
					ot.Partitions = append(ot.Partitions, op)
				}
				out.Topics = append(out.Topics, ot)
			}
		}
	case *kmsg.FindCoordinatorRequest:
		if r.CoordinatorType != 0 {
			return nil, nil
		}
		keys := r.CoordinatorKeys
		if r.Version < 4 {
			keys = []string{r.CoordinatorKey}
		}
		for _, k := range keys {
			if !c.can(opDescribe, rtGroup, k) {
				resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
				resp.ErrorCode = groupDenied
				for _, k := range keys {
					co := kmsg.NewFindCoordinatorResponseCoordinator()
					co.Key, co.NodeID, co.ErrorCode = k, -1, groupDenied
					if c.can(opDescribe, rtGroup, k) {
						co.ErrorCode = 0
						co.NodeID, co.Host, co.Port = nodeID, c.lst.host, c.lst.port
					}
					resp.Coordinators = append(resp.Coordinators, co)
				}
				if r.Version >= 4 {
					resp.ErrorCode = 0
				}
				return resp, nil
			}
		}
	case *kmsg.InitProducerIDRequest:
		if !c.canCluster(opIdempotentWrite) && !c.s.cfg.ACL.AuthorizeAny(c.principal, c.host, opWrite, rtTopic) {
			resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
			resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = clusterDenied, -1, -1
			return resp, nil
		}
	case *kmsg.CreateTopicsRequest:
		var denied []string
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			if c.canCreateTopic(t.Topic) {
				kept = append(kept, t)
			} else {
				denied = append(denied, t.Topic)
			}
		}
		r.Topics = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.CreateTopicsResponse)
			for _, name := range denied {
				t := kmsg.NewCreateTopicsResponseTopic()
				t.Topic, t.ErrorCode, t.NumPartitions, t.ReplicationFactor = name, topicDenied, -1, -1
				out.Topics = append(out.Topics, t)
			}
		}
	case *kmsg.DeleteTopicsRequest:
		var denied []string
		if r.Version >= 6 {
			kept := r.Topics[:0]
			for _, t := range r.Topics {
				name := ""
				if t.Topic != nil {
					name = *t.Topic
				} else if st := c.s.topicByID(t.TopicID); st != nil {
					name = st.Name()
				}
				if name == "" || c.can(opDelete, rtTopic, name) {
					kept = append(kept, t)
				} else {
					denied = append(denied, name)
				}
			}
			r.Topics = kept
		} else {
			kept := r.TopicNames[:0]
			for _, name := range r.TopicNames {
				if c.can(opDelete, rtTopic, name) {
					kept = append(kept, name)
				} else {
					denied = append(denied, name)
				}
			}
			r.TopicNames = kept
		}
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DeleteTopicsResponse)
			for _, name := range denied {
				t := kmsg.NewDeleteTopicsResponseTopic()
				n := name
				t.Topic, t.ErrorCode = &n, topicDenied
				out.Topics = append(out.Topics, t)
			}
		}
	case *kmsg.CreatePartitionsRequest:
		var denied []string
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			if c.can(opAlter, rtTopic, t.Topic) {
				kept = append(kept, t)
			} else {
				denied = append(denied, t.Topic)
			}
		}
		r.Topics = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.CreatePartitionsResponse)
			for _, name := range denied {
				t := kmsg.NewCreatePartitionsResponseTopic()
				t.Topic, t.ErrorCode = name, topicDenied
				out.Topics = append(out.Topics, t)
			}
		}
	case *kmsg.DescribeConfigsRequest:
		var denied []kmsg.DescribeConfigsRequestResource
		kept := r.Resources[:0]
		for _, res := range r.Resources {
			ok := true
			switch res.ResourceType {
			case kmsg.ConfigResourceTypeTopic:
				ok = c.can(opDescribeConfigs, rtTopic, res.ResourceName)
			case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
				ok = c.canCluster(opDescribeConfigs)
			}
			if ok {
				kept = append(kept, res)
			} else {
				denied = append(denied, res)
			}
		}
		r.Resources = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeConfigsResponse)
			for _, res := range denied {
				o := kmsg.NewDescribeConfigsResponseResource()
				o.ResourceType, o.ResourceName, o.ErrorCode = res.ResourceType, res.ResourceName, topicDenied
				if res.ResourceType != kmsg.ConfigResourceTypeTopic {
					o.ErrorCode = clusterDenied
				}
				out.Resources = append(out.Resources, o)
			}
		}
	case *kmsg.DescribeLogDirsRequest:
		if !c.canCluster(opDescribe) {
			resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
			resp.ErrorCode = clusterDenied
			return resp, nil
		}
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		if !c.canCluster(opDescribe) {
			resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
			resp.ErrorCode = clusterDenied
			return resp, nil
		}
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		if !c.canCluster(opAlter) {
			resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
			add := func(name string) {
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode = name, clusterDenied
				resp.Results = append(resp.Results, res)
			}
			for _, d := range r.Deletions {
				add(d.Name)
			}
			for _, u := range r.Upsertions {
				add(u.Name)
			}
			return resp, nil
		}
	}
	return nil, nil
}

// fetchAllowed returns whether the principal may READ each topic of a Fetch,
// decided once per request.
func (c *conn) fetchAllowed(r *kmsg.FetchRequest) map[string]bool {
	if !c.authorizing() {
		return nil
	}
	allowed := make(map[string]bool, len(r.Topics))
	for _, t := range r.Topics {
		allowed[t.Topic] = c.can(opRead, rtTopic, t.Topic)
	}
	return allowed
}

// handleACLs answers CreateAcls, DescribeAcls and DeleteAcls: the caller needs
// DESCRIBE (describe) or ALTER (create, delete) on the cluster.
func (c *conn) handleACLs(req kmsg.Request) kmsg.Response {
	a := c.s.cfg.ACL
	if c.authorizing() && !c.canCluster(acl.ClusterOperation(req.Key())) {
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		switch r := resp.(type) {
		case *kmsg.CreateACLsResponse:
			for range req.(*kmsg.CreateACLsRequest).Creations {
				res := kmsg.NewCreateACLsResponseResult()
				res.ErrorCode = clusterDenied
				r.Results = append(r.Results, res)
			}
		case *kmsg.DescribeACLsResponse:
			r.ErrorCode = clusterDenied
		case *kmsg.DeleteACLsResponse:
			for range req.(*kmsg.DeleteACLsRequest).Filters {
				res := kmsg.NewDeleteACLsResponseResult()
				res.ErrorCode = clusterDenied
				r.Results = append(r.Results, res)
			}
		}
		return resp
	}
	resp, _ := a.Handle(req)
	return resp
}

// screenGroup is screen for the consumer-group requests, which go to the group
// coordinator.
func (c *conn) screenGroup(req kmsg.Request) (deny kmsg.Response, complete func(kmsg.Response)) {
	if !c.authorizing() {
		return nil, nil
	}
	canGroup := func(op kmsg.ACLOperation, g string) bool { return c.can(op, rtGroup, g) }
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		if !canGroup(opRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation = groupDenied, -1
			return resp, nil
		}
	case *kmsg.SyncGroupRequest:
		if !canGroup(opRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
	case *kmsg.HeartbeatRequest:
		if !canGroup(opRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
	case *kmsg.LeaveGroupRequest:
		if !canGroup(opRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
	case *kmsg.OffsetCommitRequest:
		groupOK := canGroup(opRead, r.Group)
		var denied []kmsg.OffsetCommitRequestTopic
		var deniedCodes []int16
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			switch {
			case !groupOK:
				denied, deniedCodes = append(denied, t), append(deniedCodes, groupDenied)
			case !c.can(opRead, rtTopic, t.Topic):
				denied, deniedCodes = append(denied, t), append(deniedCodes, topicDenied)
			default:
				kept = append(kept, t)
			}
		}
		r.Topics = kept
		answer := func(resp *kmsg.OffsetCommitResponse) {
			for i, t := range denied {
				ot := kmsg.NewOffsetCommitResponseTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewOffsetCommitResponseTopicPartition()
					op.Partition, op.ErrorCode = p.Partition, deniedCodes[i]
					ot.Partitions = append(ot.Partitions, op)
				}
				resp.Topics = append(resp.Topics, ot)
			}
		}
		if !groupOK {
			resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
			answer(resp)
			return resp, nil
		}
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) { answer(resp.(*kmsg.OffsetCommitResponse)) }
	case *kmsg.OffsetFetchRequest:
		if r.Version < 8 && !canGroup(opDescribe, r.Group) {
			resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
		return nil, func(resp kmsg.Response) { c.screenOffsetFetch(r, resp.(*kmsg.OffsetFetchResponse)) }
	case *kmsg.DescribeGroupsRequest:
		var denied []string
		kept := r.Groups[:0]
		for _, g := range r.Groups {
			if canGroup(opDescribe, g) {
				kept = append(kept, g)
			} else {
				denied = append(denied, g)
			}
		}
		r.Groups = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DescribeGroupsResponse)
			for _, g := range denied {
				dg := kmsg.NewDescribeGroupsResponseGroup()
				dg.Group, dg.ErrorCode = g, groupDenied
				out.Groups = append(out.Groups, dg)
			}
		}
	case *kmsg.ListGroupsRequest:
		if c.canCluster(opDescribe) {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.ListGroupsResponse)
			kept := out.Groups[:0]
			for _, g := range out.Groups {
				if canGroup(opDescribe, g.Group) {
					kept = append(kept, g)
				}
			}
			out.Groups = kept
		}
	case *kmsg.DeleteGroupsRequest:
		var denied []string
		kept := r.Groups[:0]
		for _, g := range r.Groups {
			if canGroup(opDelete, g) {
				kept = append(kept, g)
			} else {
				denied = append(denied, g)
			}
		}
		r.Groups = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.DeleteGroupsResponse)
			for _, g := range denied {
				dg := kmsg.NewDeleteGroupsResponseGroup()
				dg.Group, dg.ErrorCode = g, groupDenied
				out.Groups = append(out.Groups, dg)
			}
		}
	case *kmsg.OffsetDeleteRequest:
		if !canGroup(opDelete, r.Group) {
			resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = groupDenied
			return resp, nil
		}
		var denied []kmsg.OffsetDeleteRequestTopic
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			if c.can(opRead, rtTopic, t.Topic) {
				kept = append(kept, t)
			} else {
				denied = append(denied, t)
			}
		}
		r.Topics = kept
		return nil, func(resp kmsg.Response) {
			out := resp.(*kmsg.OffsetDeleteResponse)
			for _, t := range denied {
				ot := kmsg.NewOffsetDeleteResponseTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewOffsetDeleteResponseTopicPartition()
					op.Partition, op.ErrorCode = p.Partition, topicDenied
					ot.Partitions = append(ot.Partitions, op)
				}
				out.Topics = append(out.Topics, ot)
			}
		}
	}
	return nil, nil
}

// screenOffsetFetch hides, in an OffsetFetch answer, the offsets of groups and
// topics the principal may not describe: named ones answer
// GROUP_ / TOPIC_AUTHORIZATION_FAILED, unnamed ones (all topics) are left out.
func (c *conn) screenOffsetFetch(r *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	screenTopics := func(named bool, topics []kmsg.OffsetFetchResponseTopic) []kmsg.OffsetFetchResponseTopic {
		kept := topics[:0]
		for _, t := range topics {
			if c.can(opDescribe, rtTopic, t.Topic) {
				kept = append(kept, t)
				continue
			}
			if named {
				for i := range t.Partitions {
					t.Partitions[i].ErrorCode, t.Partitions[i].Offset, t.Partitions[i].Metadata = topicDenied, -1, nil
				}
				kept = append(kept, t)
			}
		}
		return kept
	}
	if r.Version < 8 {
		resp.Topics = screenTopics(r.Topics != nil, resp.Topics)
		return
	}
	for i := range resp.Groups {
		g := &resp.Groups[i]
		if !c.can(opDescribe, rtGroup, g.Group) {
			g.ErrorCode, g.Topics = groupDenied, nil
			continue
		}
		named := false
		for _, rg := range r.Groups {
			if rg.Group == g.Group {
				named = rg.Topics != nil
			}
		}
		topics := make([]kmsg.OffsetFetchResponseTopic, len(g.Topics))
		for j, t := range g.Topics {
			topics[j] = kmsg.OffsetFetchResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				topics[j].Partitions = append(topics[j].Partitions, kmsg.OffsetFetchResponseTopicPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode})
			}
		}
		topics = screenTopics(named, topics)
		g.Topics = g.Topics[:0]
		for _, t := range topics {
			gt := kmsg.OffsetFetchResponseGroupTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				gt.Partitions = append(gt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode})
			}
			g.Topics = append(g.Topics, gt)
		}
	}
}
