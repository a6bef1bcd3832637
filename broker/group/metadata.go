package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// persist asks for the group's metadata (generation, protocol, leader, members with their
// assignments) to be stored in __consumer_offsets, as Kafka does after each rebalance, so
// that a restarted broker keeps the group stable. A later persist in the same Step replaces
// an earlier one: each record is the whole state.
func (g *group) persist() {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.now.UnixMilli()
	for _, m := range g.orderedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	g.out.record = v.AppendTo(nil)
}

// restore rebuilds a group from its stored metadata at load: a group that was stable stays
// stable with the same members, generation and assignments, and its members' sessions start
// now.
func (g *group) restore(v *kmsg.GroupMetadataValue) {
	g.generation = v.Generation
	g.protocolType = v.ProtocolType
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	if len(v.Members) == 0 {
		g.state = stateEmpty
		if v.CurrentStateTimestamp > 0 {
			g.emptySince = time.UnixMilli(v.CurrentStateTimestamp)
		}
		return
	}
	g.state = stateStable
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocols:        []protocol{{name: g.protocol, metadata: vm.Subscription}},
			assignment:       vm.Assignment,
			seq:              g.nextSeq,
		}
		if m.assignment == nil {
			m.assignment = []byte{}
		}
		g.nextSeq++
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.schedHeartbeat(m)
	}
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.orderedMembers()[0].id
	}
}
