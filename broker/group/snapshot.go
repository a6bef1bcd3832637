package group

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupInfo is a consumer group as the broker's status page shows it.
type GroupInfo struct {
	ID           string
	State        string // Empty, PreparingRebalance, CompletingRebalance, Stable
	ProtocolType string // "consumer" for Kafka consumers
	Protocol     string // the assignor, once stable
	Members      []MemberInfo
	Committed    []CommittedOffset // sorted by topic, then partition
}

// MemberInfo is one member of a group.
type MemberInfo struct {
	ID, ClientID, Host string
	// Assigned is the member's partitions by topic, decoded from the consumer protocol's
	// assignment (empty for other protocols or before the group is stable).
	Assigned map[string][]int32
}

// CommittedOffset is a group's committed offset of one partition.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Snapshot describes every group the coordinator knows, with its members and
// committed offsets, as ListGroups, DescribeGroups and OffsetFetch would. It changes
// nothing. It returns nil while the coordinator is still loading.
func (c *Coordinator) Snapshot() []GroupInfo {
	if c.available() != 0 {
		return nil
	}
	list := c.listGroups(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	var out []GroupInfo
	for _, lg := range list.Groups {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{lg.Group}
		desc := c.describeGroups(req).(*kmsg.DescribeGroupsResponse)
		gi := GroupInfo{ID: lg.Group, State: lg.GroupState, ProtocolType: lg.ProtocolType}
		if len(desc.Groups) == 1 {
			d := desc.Groups[0]
			gi.State, gi.Protocol = d.State, d.Protocol
			if d.ProtocolType != "" {
				gi.ProtocolType = d.ProtocolType
			}
			for _, m := range d.Members {
				mi := MemberInfo{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
				var a kmsg.ConsumerMemberAssignment
				if gi.ProtocolType == "consumer" && len(m.MemberAssignment) > 0 && a.ReadFrom(m.MemberAssignment) == nil {
					mi.Assigned = map[string][]int32{}
					for _, t := range a.Topics {
						mi.Assigned[t.Topic] = append(mi.Assigned[t.Topic], t.Partitions...)
					}
				}
				gi.Members = append(gi.Members, mi)
			}
		}
		for _, t := range c.fetchOffsets(lg.Group, nil, true) {
			for _, p := range t.Partitions {
				gi.Committed = append(gi.Committed, CommittedOffset{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset})
			}
		}
		out = append(out, gi)
	}
	return out
}
