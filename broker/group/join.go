package group

import "time"

// join handles a JoinGroup: it answers at once, or registers the member's wait for the end
// of the join phase.
func (g *group) join(from waiterID, r joinRequest) {
	fail := func(code int16, memberID string) {
		g.replyJoin(from, joinResult{errCode: code, generation: -1, memberID: memberID})
	}
	if g.state == stateDead {
		fail(errCoordinatorNotAvailable, r.memberID)
		return
	}
	if r.memberID == "" {
		if r.instanceID != nil {
			if old, ok := g.static[*r.instanceID]; ok {
				g.staticRejoin(from, g.members[old], r)
				return
			}
			if !g.acceptsProtocols(nil, r.protocolType, r.protocols) {
				fail(errInconsistentProtocol, "")
				return
			}
			g.addMember(from, newMemberID(*r.instanceID), r)
			return
		}
		if !g.acceptsProtocols(nil, r.protocolType, r.protocols) {
			fail(errInconsistentProtocol, "")
			return
		}
		id := newMemberID(r.clientID)
		if r.version >= 4 {
			g.pending[id] = struct{}{}
			g.arm(pendingKey(id), r.sessionTimeout)
			fail(errMemberIDRequired, id)
			return
		}
		g.addMember(from, id, r)
		return
	}
	if _, ok := g.pending[r.memberID]; ok {
		g.disarm(pendingKey(r.memberID))
		delete(g.pending, r.memberID)
		if !g.acceptsProtocols(nil, r.protocolType, r.protocols) {
			g.maybeCompleteJoin()
			fail(errInconsistentProtocol, r.memberID)
			return
		}
		g.addMember(from, r.memberID, r)
		return
	}
	m := g.members[r.memberID]
	if r.instanceID != nil {
		if id, ok := g.static[*r.instanceID]; ok && id != r.memberID {
			fail(errFencedInstanceID, r.memberID)
			return
		}
	}
	if m == nil {
		fail(errUnknownMemberID, r.memberID)
		return
	}
	if !g.acceptsProtocols(m, r.protocolType, r.protocols) {
		fail(errInconsistentProtocol, r.memberID)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		m.update(r)
		g.awaitJoin(m, from)
		g.maybeCompleteJoin()
	case stateCompletingRebalance:
		if sameProtocols(m.protocols, r.protocols) {
			// The member missed our answer: repeat it.
			g.schedHeartbeat(m)
			g.replyJoin(from, g.joinAnswer(m))
			return
		}
		m.update(r)
		g.awaitJoin(m, from)
		g.prepareRebalance()
	case stateStable:
		if m.id != g.leader && sameProtocols(m.protocols, r.protocols) {
			// Nothing changed: the follower may sync again with the current generation.
			g.schedHeartbeat(m)
			g.replyJoin(from, g.currentJoin(m))
			return
		}
		m.update(r)
		g.awaitJoin(m, from)
		g.prepareRebalance()
	default:
		fail(errUnknownMemberID, r.memberID)
	}
}

// pendingExpired forgets a member id handed out with MEMBER_ID_REQUIRED whose JoinGroup did
// not come within its session timeout.
func (g *group) pendingExpired(id string) {
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		g.maybeCompleteJoin()
	}
}

func (m *member) update(r joinRequest) {
	m.clientID = r.clientID
	m.clientHost = r.clientHost
	m.sessionTimeout = r.sessionTimeout
	m.rebalanceTimeout = r.rebalanceTimeout
	m.protocols = r.protocols
}

// awaitJoin registers a waiting JoinGroup of m.
func (g *group) awaitJoin(m *member, from waiterID) {
	if m.join != 0 {
		// A second JoinGroup for the same member supersedes the first (the client retried,
		// typically on a new connection).
		g.replyJoin(m.join, joinResult{errCode: errRebalanceInProgress, generation: -1, memberID: m.id})
	}
	m.join = from
}

// addMember adds a new member waiting to join, starting a rebalance if none is under way.
func (g *group) addMember(from waiterID, id string, r joinRequest) {
	m := &member{id: id, instanceID: r.instanceID, seq: g.nextSeq}
	g.nextSeq++
	m.update(r)
	if len(g.members) == 0 {
		g.protocolType = r.protocolType
	}
	g.members[id] = m
	if r.instanceID != nil {
		g.static[*r.instanceID] = id
	}
	g.awaitJoin(m, from)
	g.schedHeartbeat(m)
	g.newMemberJoined = true
	if g.state == statePreparingRebalance {
		g.maybeCompleteJoin()
	} else {
		g.prepareRebalance()
	}
}

// staticRejoin handles a JoinGroup without member id from a known group.instance.id: the
// member gets a new id and the old id is fenced. In a stable group with unchanged protocols
// the member keeps its assignment and no rebalance happens.
func (g *group) staticRejoin(from waiterID, m *member, r joinRequest) {
	if !g.acceptsProtocols(m, r.protocolType, r.protocols) {
		g.replyJoin(from, joinResult{errCode: errInconsistentProtocol, generation: -1})
		return
	}
	old := m.id
	if m.join != 0 {
		g.replyJoin(m.join, joinResult{errCode: errFencedInstanceID, generation: -1, memberID: old})
		m.join = 0
	}
	if m.sync != 0 {
		g.replySync(m.sync, syncResult{errCode: errFencedInstanceID})
		m.sync = 0
	}
	delete(g.members, old)
	m.id = newMemberID(*r.instanceID)
	g.members[m.id] = m
	g.static[*r.instanceID] = m.id
	if g.leader == old {
		g.leader = m.id
	}
	g.log.Info("static group member rejoined", "group", g.id, "instance", *r.instanceID, "old", old, "member", m.id)
	switch g.state {
	case stateStable:
		if sameProtocols(m.protocols, r.protocols) {
			m.update(r)
			g.schedHeartbeat(m)
			g.persist() // the new member id replaces the old one
			g.replyJoin(from, g.joinAnswer(m))
			return
		}
		m.update(r)
		g.awaitJoin(m, from)
		g.prepareRebalance()
	case stateCompletingRebalance:
		m.update(r)
		g.awaitJoin(m, from)
		g.prepareRebalance()
	default: // PreparingRebalance
		m.update(r)
		g.awaitJoin(m, from)
		g.schedHeartbeat(m)
		g.maybeCompleteJoin()
	}
}

// currentJoin is the join answer for m in the current generation (without the member list).
func (g *group) currentJoin(m *member) joinResult {
	return joinResult{
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
		memberID:     m.id,
	}
}

// joinAnswer is currentJoin with the member list for the leader.
func (g *group) joinAnswer(m *member) joinResult {
	res := g.currentJoin(m)
	if m.id == g.leader {
		res.members = g.memberList(g.orderedMembers())
	}
	return res
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}
