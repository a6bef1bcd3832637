package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// startPhase arms the phase timer with action.
func (g *group) startPhase(d time.Duration, action phaseAction) {
	g.phase = action
	g.arm(phaseKey, d)
}

// stopPhase stops the phase timer.
func (g *group) stopPhase() {
	if g.phase != phaseNone {
		g.phase = phaseNone
		g.disarm(phaseKey)
	}
}

// prepareRebalance starts a join phase: members must (re)join within the rebalance timeout.
// A group that was empty waits the initial rebalance delay first, extended while new members
// keep arriving, so that members starting together rebalance once.
func (g *group) prepareRebalance() {
	if g.state == stateCompletingRebalance {
		for _, m := range g.orderedMembers() {
			if m.sync != 0 {
				g.replySync(m.sync, syncResult{errCode: errRebalanceInProgress})
				m.sync = 0
				g.schedHeartbeat(m) // it was alive while it waited
			}
			m.assignment = nil
		}
	}
	wasEmpty := g.state == stateEmpty
	g.state = statePreparingRebalance
	rt := g.maxRebalanceTimeout()
	if delay := g.cfg.initialRebalanceDelay; wasEmpty && delay > 0 {
		g.initialDelay = true
		g.newMemberJoined = false
		d := min(delay, rt)
		g.delayRemaining = max(rt-delay, 0)
		g.startPhase(d, phaseInitialDelay)
		return
	}
	g.initialDelay = false
	g.startPhase(rt, phaseJoin)
	g.maybeCompleteJoin()
}

func (g *group) initialDelayExpired() {
	if g.newMemberJoined && g.delayRemaining > 0 {
		d := min(g.cfg.initialRebalanceDelay, g.delayRemaining)
		g.delayRemaining -= d
		g.newMemberJoined = false
		g.startPhase(d, phaseInitialDelay)
		return
	}
	g.completeJoin()
}

// maybeCompleteJoin completes the join phase early once every member has rejoined and no
// member id handed out with MEMBER_ID_REQUIRED is outstanding.
func (g *group) maybeCompleteJoin() {
	if g.state != statePreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == 0 {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are removed, the generation
// advances, a protocol and a leader are chosen and every joined member is answered (the leader
// with the members' metadata).
func (g *group) completeJoin() {
	if g.state != statePreparingRebalance {
		return
	}
	g.stopPhase()
	g.initialDelay = false
	for _, m := range g.orderedMembers() {
		if m.join == 0 {
			g.log.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMember(m)
		}
	}
	g.generation++
	g.out.rebalances++
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol, g.protocolType, g.leader = "", "", ""
		g.emptySince = g.now
		g.persist()
		return
	}
	g.protocol = g.selectProtocol()
	ordered := g.orderedMembers()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ordered[0].id
	}
	g.state = stateCompletingRebalance
	// Members must send SyncGroup within the rebalance timeout; the leader's brings the
	// assignment. Those that do not are removed (see syncExpired).
	g.startPhase(g.maxRebalanceTimeout(), phaseSync)
	list := g.memberList(ordered)
	for _, m := range ordered {
		res := g.currentJoin(m)
		if m.id == g.leader {
			res.members = list
		}
		g.replyJoin(m.join, res)
		m.join = 0
		g.schedHeartbeat(m)
	}
	g.log.Debug("group rebalanced", "group", g.id, "generation", g.generation, "members", len(ordered), "protocol", g.protocol)
}

func (g *group) memberList(ordered []*member) []kmsg.JoinGroupResponseMember {
	list := make([]kmsg.JoinGroupResponseMember, 0, len(ordered))
	for _, m := range ordered {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(g.protocol)
		list = append(list, jm)
	}
	return list
}

// syncExpired ends a CompletingRebalance phase whose leader did not send its assignment in
// time: members that have not sent SyncGroup (the leader among them) are removed and the
// others rebalance.
func (g *group) syncExpired() {
	if g.state != stateCompletingRebalance {
		return
	}
	for _, m := range g.orderedMembers() {
		if m.sync == 0 {
			g.log.Info("group member did not sync in time", "group", g.id, "member", m.id)
			g.removeMember(m)
		}
	}
	g.prepareRebalance()
}

// sync handles a SyncGroup: the leader's assignment completes the rebalance; followers wait
// for it.
func (g *group) sync(e syncEvent) {
	fail := func(code int16) { g.replySync(e.from, syncResult{errCode: code}) }
	if g.state == stateDead {
		fail(errCoordinatorNotAvailable)
		return
	}
	m, code := g.checkMember(e.memberID, e.instanceID)
	if code != 0 {
		fail(code)
		return
	}
	if e.generation != g.generation {
		fail(errIllegalGeneration)
		return
	}
	if e.protocolType != nil && *e.protocolType != g.protocolType || e.proto != nil && *e.proto != g.protocol {
		fail(errInconsistentProtocol)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		fail(errRebalanceInProgress)
	case stateStable:
		g.schedHeartbeat(m)
		g.replySync(e.from, g.syncAnswer(m))
	case stateCompletingRebalance:
		if m.sync != 0 {
			g.replySync(m.sync, syncResult{errCode: errRebalanceInProgress})
		}
		m.sync = e.from
		g.schedHeartbeat(m)
		if m.id != g.leader {
			return
		}
		for _, o := range g.members {
			o.assignment = e.assignments[o.id]
			if o.assignment == nil {
				o.assignment = []byte{}
			}
		}
		g.state = stateStable
		g.stopPhase()
		g.persist()
		for _, o := range g.orderedMembers() {
			if o.sync != 0 {
				g.replySync(o.sync, g.syncAnswer(o))
				o.sync = 0
				g.schedHeartbeat(o) // it was alive while it waited
			}
		}
	default:
		fail(errUnknownMemberID)
	}
}

func (g *group) syncAnswer(m *member) syncResult {
	return syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment}
}
