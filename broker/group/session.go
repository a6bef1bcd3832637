package group

// schedHeartbeat (re)starts m's session timer.
func (g *group) schedHeartbeat(m *member) {
	g.arm(sessionKey(m), m.sessionTimeout)
}

// sessionExpired removes a member whose session timed out.
func (g *group) sessionExpired(m *member) {
	if m.join != 0 || m.sync != 0 {
		// A member blocked in JoinGroup or SyncGroup is alive; the rebalance timeout or the
		// leader's session bounds the wait.
		g.schedHeartbeat(m)
		return
	}
	g.log.Info("group member session expired", "group", g.id, "member", m.id)
	g.removeMember(m)
	g.memberRemoved()
}

// removeMember drops m from the group, answering its blocked requests.
func (g *group) removeMember(m *member) {
	g.disarm(sessionKey(m))
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if m.join != 0 {
		g.replyJoin(m.join, joinResult{errCode: errUnknownMemberID, generation: -1, memberID: m.id})
		m.join = 0
	}
	if m.sync != 0 {
		g.replySync(m.sync, syncResult{errCode: errUnknownMemberID})
		m.sync = 0
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// memberRemoved moves the group on after a member left or expired.
func (g *group) memberRemoved() {
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance()
	case statePreparingRebalance:
		g.maybeCompleteJoin()
	}
}

// checkMember resolves memberID (and the static instance id, if given) to a member, or
// returns the error code a request from it gets.
func (g *group) checkMember(memberID string, instanceID *string) (*member, int16) {
	if instanceID != nil {
		if id, ok := g.static[*instanceID]; ok && id != memberID {
			return nil, errFencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, errUnknownMemberID
	}
	return m, 0
}

// heartbeat handles a Heartbeat.
func (g *group) heartbeat(gen int32, memberID string, instanceID *string) int16 {
	switch {
	case g.state == stateDead:
		return errCoordinatorNotAvailable
	case g.state == stateEmpty:
		return errUnknownMemberID
	}
	if _, ok := g.pending[memberID]; ok {
		return errRebalanceInProgress
	}
	m, code := g.checkMember(memberID, instanceID)
	if code != 0 {
		return code
	}
	if gen != g.generation {
		return errIllegalGeneration
	}
	g.schedHeartbeat(m)
	if g.state == statePreparingRebalance {
		return errRebalanceInProgress
	}
	return 0
}

// leave handles one member of a LeaveGroup. With an instance id and no member id, the static
// member is removed whatever its current member id (an administrative removal).
func (g *group) leave(memberID string, instanceID *string) int16 {
	if g.state == stateDead {
		return errCoordinatorNotAvailable
	}
	if instanceID != nil {
		id, ok := g.static[*instanceID]
		if !ok {
			return errUnknownMemberID
		}
		if memberID != "" && memberID != id {
			return errFencedInstanceID
		}
		memberID = id
	}
	if _, ok := g.pending[memberID]; ok {
		g.disarm(pendingKey(memberID))
		delete(g.pending, memberID)
		g.maybeCompleteJoin()
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return errUnknownMemberID
	}
	g.log.Info("group member left", "group", g.id, "member", m.id)
	g.removeMember(m)
	g.memberRemoved()
	return 0
}

// checkCommit validates an OffsetCommit's generation and member. Commits with generation < 0
// and no member id to a group without members come from simple consumers (no group
// management) and are accepted.
func (g *group) checkCommit(gen int32, memberID string, instanceID *string) int16 {
	if g.state == stateDead {
		return errCoordinatorNotAvailable
	}
	if gen < 0 && memberID == "" && len(g.members) == 0 {
		return 0
	}
	m, code := g.checkMember(memberID, instanceID)
	if code != 0 {
		return code
	}
	if gen != g.generation {
		return errIllegalGeneration
	}
	if g.state == stateCompletingRebalance {
		return errRebalanceInProgress
	}
	g.schedHeartbeat(m)
	return 0
}
