package group

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic-protocol group state, named as Kafka names them.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// Error codes used by the coordinator.
var (
	errUnknownMemberID         = kerr.UnknownMemberID.Code
	errIllegalGeneration       = kerr.IllegalGeneration.Code
	errRebalanceInProgress     = kerr.RebalanceInProgress.Code
	errInconsistentProtocol    = kerr.InconsistentGroupProtocol.Code
	errMemberIDRequired        = kerr.MemberIDRequired.Code
	errFencedInstanceID        = kerr.FencedInstanceID.Code
	errCoordinatorNotAvailable = kerr.CoordinatorNotAvailable.Code
	errInvalidSessionTimeout   = kerr.InvalidSessionTimeout.Code
	errInvalidGroupID          = kerr.InvalidGroupID.Code
	errGroupIDNotFound         = kerr.GroupIDNotFound.Code
	errNonEmptyGroup           = kerr.NonEmptyGroup.Code
	errUnknownTopicOrPartition = kerr.UnknownTopicOrPartition.Code
	errOffsetMetadataTooLarge  = kerr.OffsetMetadataTooLarge.Code
	errGroupSubscribedToTopic  = kerr.GroupSubscribedToTopic.Code
)

// protocol is one assignment protocol a member supports, with its metadata.
type protocol struct {
	name     string
	metadata []byte
}

// joinResult answers a JoinGroup.
type joinResult struct {
	errCode      int16
	generation   int32
	protocolType string
	protocol     string
	leader       string
	memberID     string
	members      []kmsg.JoinGroupResponseMember // only for the leader
}

// syncResult answers a SyncGroup.
type syncResult struct {
	errCode      int16
	protocolType string
	protocol     string
	assignment   []byte
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocol
	assignment       []byte
	seq              uint64 // join order: the leader is the longest-standing member

	join chan joinResult // set while the member's JoinGroup waits for the rebalance
	sync chan syncResult // set while the member's SyncGroup waits for the leader

	hb    Timer // session timeout
	hbSeq uint64
}

// joinRequest is a JoinGroup, version-independent.
type joinRequest struct {
	version          int16
	memberID         string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []protocol
}

// group is one consumer group. Every field is guarded by mu; timers re-take mu and check a
// sequence number so that a timer that fires after being replaced does nothing.
type group struct {
	c  *Coordinator
	id string

	mu           sync.Mutex
	state        state
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string // group.instance.id -> member id
	pending      map[string]Timer  // member ids handed out with MEMBER_ID_REQUIRED, not yet joined
	nextSeq      uint64
	emptySince   time.Time

	joinTimer       Timer // rebalance timeout or initial delay
	joinSeq         uint64
	initialDelay    bool // the join phase is in its initial delay
	delayRemaining  time.Duration
	newMemberJoined bool
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c:          c,
		id:         id,
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]Timer),
		emptySince: c.clock.Now(),
	}
}

// newMemberID returns prefix-<random UUID>, as Kafka forms member ids.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// orderedMembers returns the members in join order.
func (g *group) orderedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return ms
}

// candidates returns the protocols that every member except skip supports, in the order of
// the longest-standing such member's preference; nil means no constraint (no other member).
func (g *group) candidates(skip *member) []string {
	var out []string
	first := true
	for _, m := range g.orderedMembers() {
		if m == skip {
			continue
		}
		if first {
			for _, p := range m.protocols {
				out = append(out, p.name)
			}
			first = false
			continue
		}
		out = slices.DeleteFunc(out, func(name string) bool { return !m.supports(name) })
	}
	if first {
		return nil
	}
	return out
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// acceptsProtocols reports whether a member (skip, or a new one when skip is nil) with these
// protocols can be in the group: same protocol type, and at least one protocol that all other
// members support.
func (g *group) acceptsProtocols(skip *member, protocolType string, protocols []protocol) bool {
	others := len(g.members)
	if skip != nil {
		others--
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidates(skip)
	for _, p := range protocols {
		if slices.Contains(cands, p.name) {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol for the new generation as Kafka does: among the protocols
// every member supports, each member votes for the one it prefers most; the most votes win
// (ties go to the longest-standing member's preference).
func (g *group) selectProtocol() string {
	cands := g.candidates(nil)
	votes := make(map[string]int, len(cands))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(cands, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, name := range cands {
		if votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

func sameProtocols(a, b []protocol) bool {
	return slices.EqualFunc(a, b, func(x, y protocol) bool {
		return x.name == y.name && bytes.Equal(x.metadata, y.metadata)
	})
}

// schedHeartbeat (re)starts m's session timer.
func (g *group) schedHeartbeat(m *member) {
	if m.hb != nil {
		m.hb.Stop()
	}
	m.hbSeq++
	seq := m.hbSeq
	m.hb = g.c.clock.AfterFunc(m.sessionTimeout, func() { g.sessionExpired(m, seq) })
}

func (g *group) sessionExpired(m *member, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c.closed.Load() || g.members[m.id] != m || m.hbSeq != seq {
		return
	}
	if m.join != nil || m.sync != nil {
		// A member blocked in JoinGroup or SyncGroup is alive; the rebalance timeout or the
		// leader's session bounds the wait.
		g.schedHeartbeat(m)
		return
	}
	g.c.log.Info("group member session expired", "group", g.id, "member", m.id)
	g.removeMember(m)
	g.memberRemoved()
}

// removeMember drops m from the group, answering its blocked requests.
func (g *group) removeMember(m *member) {
	if m.hb != nil {
		m.hb.Stop()
		m.hb = nil
	}
	m.hbSeq++
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if m.join != nil {
		m.join <- joinResult{errCode: errUnknownMemberID, generation: -1, memberID: m.id}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{errCode: errUnknownMemberID}
		m.sync = nil
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

func (g *group) stopJoinTimer() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinSeq++
}

func (g *group) startJoinTimer(d time.Duration, f func()) {
	g.stopJoinTimer()
	seq := g.joinSeq
	g.joinTimer = g.c.clock.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.c.closed.Load() || g.joinSeq != seq {
			return
		}
		g.joinTimer = nil
		f()
	})
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a join phase: members must (re)join within the rebalance timeout.
// A group that was empty waits the initial rebalance delay first, extended while new members
// keep arriving, so that members starting together rebalance once.
func (g *group) prepareRebalance() {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			if m.sync != nil {
				m.sync <- syncResult{errCode: errRebalanceInProgress}
				m.sync = nil
				g.schedHeartbeat(m) // it was alive while it waited
			}
			m.assignment = nil
		}
	}
	wasEmpty := g.state == stateEmpty
	g.state = statePreparingRebalance
	rt := g.maxRebalanceTimeout()
	if delay := g.c.cfg.InitialRebalanceDelay; wasEmpty && delay > 0 {
		g.initialDelay = true
		g.newMemberJoined = false
		d := min(delay, rt)
		g.delayRemaining = max(rt-delay, 0)
		g.startJoinTimer(d, g.initialDelayExpired)
		return
	}
	g.initialDelay = false
	g.startJoinTimer(rt, g.completeJoin)
	g.maybeCompleteJoin()
}

func (g *group) initialDelayExpired() {
	if g.newMemberJoined && g.delayRemaining > 0 {
		d := min(g.c.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining -= d
		g.newMemberJoined = false
		g.startJoinTimer(d, g.initialDelayExpired)
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
		if m.join == nil {
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
	g.stopJoinTimer()
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil {
			g.c.log.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMember(m)
		}
	}
	g.generation++
	g.c.metrics.rebalances.Inc()
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol, g.protocolType, g.leader = "", "", ""
		g.emptySince = g.c.clock.Now()
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
	g.startJoinTimer(g.maxRebalanceTimeout(), g.syncExpired)
	list := g.memberList(ordered)
	for _, m := range ordered {
		res := g.currentJoin(m)
		if m.id == g.leader {
			res.members = list
		}
		m.join <- res
		m.join = nil
		g.schedHeartbeat(m)
	}
	g.c.log.Debug("group rebalanced", "group", g.id, "generation", g.generation, "members", len(ordered), "protocol", g.protocol)
}

// syncExpired ends a CompletingRebalance phase whose leader did not send its assignment in
// time: members that have not sent SyncGroup (the leader among them) are removed and the
// others rebalance.
func (g *group) syncExpired() {
	if g.state != stateCompletingRebalance {
		return
	}
	for _, m := range g.members {
		if m.sync == nil {
			g.c.log.Info("group member did not sync in time", "group", g.id, "member", m.id)
			g.removeMember(m)
		}
	}
	g.prepareRebalance()
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

// awaitJoin registers a waiting JoinGroup of m.
func (g *group) awaitJoin(m *member) chan joinResult {
	if m.join != nil {
		// A second JoinGroup for the same member supersedes the first (the client retried,
		// typically on a new connection).
		m.join <- joinResult{errCode: errRebalanceInProgress, generation: -1, memberID: m.id}
	}
	m.join = make(chan joinResult, 1)
	return m.join
}

func (m *member) update(r joinRequest) {
	m.clientID = r.clientID
	m.clientHost = r.clientHost
	m.sessionTimeout = r.sessionTimeout
	m.rebalanceTimeout = r.rebalanceTimeout
	m.protocols = r.protocols
}

func failJoin(code int16, memberID string) (joinResult, chan joinResult) {
	return joinResult{errCode: code, generation: -1, memberID: memberID}, nil
}

// join handles a JoinGroup. It returns either an immediate answer or a channel that receives
// the answer when the join phase completes.
func (g *group) join(r joinRequest) (joinResult, chan joinResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateDead {
		return failJoin(errCoordinatorNotAvailable, r.memberID)
	}
	if r.memberID == "" {
		if r.instanceID != nil {
			if old, ok := g.static[*r.instanceID]; ok {
				return g.staticRejoin(g.members[old], r)
			}
			if !g.acceptsProtocols(nil, r.protocolType, r.protocols) {
				return failJoin(errInconsistentProtocol, "")
			}
			return g.addMember(newMemberID(*r.instanceID), r)
		}
		if !g.acceptsProtocols(nil, r.protocolType, r.protocols) {
			return failJoin(errInconsistentProtocol, "")
		}
		id := newMemberID(r.clientID)
		if r.version >= 4 {
			g.addPending(id, r.sessionTimeout)
			return failJoin(errMemberIDRequired, id)
		}
		return g.addMember(id, r)
	}
	if t, ok := g.pending[r.memberID]; ok {
		t.Stop()
		delete(g.pending, r.memberID)
		if !g.acceptsProtocols(nil, r.protocolType, r.protocols) {
			g.maybeCompleteJoin()
			return failJoin(errInconsistentProtocol, r.memberID)
		}
		return g.addMember(r.memberID, r)
	}
	m := g.members[r.memberID]
	if r.instanceID != nil {
		if id, ok := g.static[*r.instanceID]; ok && id != r.memberID {
			return failJoin(errFencedInstanceID, r.memberID)
		}
	}
	if m == nil {
		return failJoin(errUnknownMemberID, r.memberID)
	}
	if !g.acceptsProtocols(m, r.protocolType, r.protocols) {
		return failJoin(errInconsistentProtocol, r.memberID)
	}
	switch g.state {
	case statePreparingRebalance:
		m.update(r)
		ch := g.awaitJoin(m)
		g.maybeCompleteJoin()
		return joinResult{}, ch
	case stateCompletingRebalance:
		if sameProtocols(m.protocols, r.protocols) {
			// The member missed our answer: repeat it.
			res := g.currentJoin(m)
			if m.id == g.leader {
				res.members = g.memberList(g.orderedMembers())
			}
			g.schedHeartbeat(m)
			return res, nil
		}
		m.update(r)
		ch := g.awaitJoin(m)
		g.prepareRebalance()
		return joinResult{}, ch
	case stateStable:
		if m.id != g.leader && sameProtocols(m.protocols, r.protocols) {
			// Nothing changed: the follower may sync again with the current generation.
			g.schedHeartbeat(m)
			return g.currentJoin(m), nil
		}
		m.update(r)
		ch := g.awaitJoin(m)
		g.prepareRebalance()
		return joinResult{}, ch
	default:
		return failJoin(errUnknownMemberID, r.memberID)
	}
}

// addPending remembers a member id handed out with MEMBER_ID_REQUIRED until the member joins
// with it or its session timeout passes.
func (g *group) addPending(id string, session time.Duration) {
	g.pending[id] = g.c.clock.AfterFunc(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.c.closed.Load() {
			return
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			g.maybeCompleteJoin()
		}
	})
}

// addMember adds a new member waiting to join, starting a rebalance if none is under way.
func (g *group) addMember(id string, r joinRequest) (joinResult, chan joinResult) {
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
	ch := g.awaitJoin(m)
	g.schedHeartbeat(m)
	g.newMemberJoined = true
	if g.state == statePreparingRebalance {
		g.maybeCompleteJoin()
	} else {
		g.prepareRebalance()
	}
	return joinResult{}, ch
}

// staticRejoin handles a JoinGroup without member id from a known group.instance.id: the
// member gets a new id and the old id is fenced. In a stable group with unchanged protocols
// the member keeps its assignment and no rebalance happens.
func (g *group) staticRejoin(m *member, r joinRequest) (joinResult, chan joinResult) {
	if !g.acceptsProtocols(m, r.protocolType, r.protocols) {
		return failJoin(errInconsistentProtocol, "")
	}
	old := m.id
	if m.join != nil {
		m.join <- joinResult{errCode: errFencedInstanceID, generation: -1, memberID: old}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{errCode: errFencedInstanceID}
		m.sync = nil
	}
	delete(g.members, old)
	m.id = newMemberID(*r.instanceID)
	g.members[m.id] = m
	g.static[*r.instanceID] = m.id
	if g.leader == old {
		g.leader = m.id
	}
	g.c.log.Info("static group member rejoined", "group", g.id, "instance", *r.instanceID, "old", old, "member", m.id)
	switch g.state {
	case stateStable:
		if sameProtocols(m.protocols, r.protocols) {
			m.update(r)
			g.schedHeartbeat(m)
			g.persist() // the new member id replaces the old one
			res := g.currentJoin(m)
			if m.id == g.leader {
				res.members = g.memberList(g.orderedMembers())
			}
			return res, nil
		}
		m.update(r)
		ch := g.awaitJoin(m)
		g.prepareRebalance()
		return joinResult{}, ch
	case stateCompletingRebalance:
		m.update(r)
		ch := g.awaitJoin(m)
		g.prepareRebalance()
		return joinResult{}, ch
	default: // PreparingRebalance
		m.update(r)
		ch := g.awaitJoin(m)
		g.schedHeartbeat(m)
		g.maybeCompleteJoin()
		return joinResult{}, ch
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

// sync handles a SyncGroup: the leader's assignment completes the rebalance; followers wait
// for it.
func (g *group) sync(gen int32, memberID string, instanceID, protocolType, protocol *string, assignments map[string][]byte) (syncResult, chan syncResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateDead {
		return syncResult{errCode: errCoordinatorNotAvailable}, nil
	}
	m, code := g.checkMember(memberID, instanceID)
	if code != 0 {
		return syncResult{errCode: code}, nil
	}
	if gen != g.generation {
		return syncResult{errCode: errIllegalGeneration}, nil
	}
	if protocolType != nil && *protocolType != g.protocolType || protocol != nil && *protocol != g.protocol {
		return syncResult{errCode: errInconsistentProtocol}, nil
	}
	switch g.state {
	case statePreparingRebalance:
		return syncResult{errCode: errRebalanceInProgress}, nil
	case stateStable:
		g.schedHeartbeat(m)
		return g.syncAnswer(m), nil
	case stateCompletingRebalance:
		if m.sync != nil {
			m.sync <- syncResult{errCode: errRebalanceInProgress}
		}
		m.sync = make(chan syncResult, 1)
		ch := m.sync
		g.schedHeartbeat(m)
		if m.id == g.leader {
			for _, o := range g.members {
				o.assignment = assignments[o.id]
				if o.assignment == nil {
					o.assignment = []byte{}
				}
			}
			g.state = stateStable
			g.stopJoinTimer()
			g.persist()
			for _, o := range g.members {
				if o.sync != nil {
					o.sync <- g.syncAnswer(o)
					o.sync = nil
					g.schedHeartbeat(o) // it was alive while it waited
				}
			}
		}
		return syncResult{}, ch
	default:
		return syncResult{errCode: errUnknownMemberID}, nil
	}
}

func (g *group) syncAnswer(m *member) syncResult {
	return syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment}
}

// heartbeat handles a Heartbeat.
func (g *group) heartbeat(gen int32, memberID string, instanceID *string) int16 {
	g.mu.Lock()
	defer g.mu.Unlock()
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
	g.mu.Lock()
	defer g.mu.Unlock()
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
	if t, ok := g.pending[memberID]; ok {
		t.Stop()
		delete(g.pending, memberID)
		g.maybeCompleteJoin()
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return errUnknownMemberID
	}
	g.c.log.Info("group member left", "group", g.id, "member", m.id)
	g.removeMember(m)
	g.memberRemoved()
	return 0
}

// checkCommit validates an OffsetCommit's generation and member. Commits with generation < 0
// and no member id to a group without members come from simple consumers (no group
// management) and are accepted.
func (g *group) checkCommit(gen int32, memberID string, instanceID *string) int16 {
	g.mu.Lock()
	defer g.mu.Unlock()
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

// persist stores the group's metadata (generation, protocol, leader, members with their
// assignments) in __consumer_offsets, as Kafka does after each rebalance, so that a restarted
// broker keeps the group stable. Errors are logged: the members then rejoin after a restart.
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
	v.CurrentStateTimestamp = g.c.clock.Now().UnixMilli()
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
	if err := g.c.offsets.storeGroup(g.id, v.AppendTo(nil)); err != nil {
		g.c.log.Error("store group metadata", "group", g.id, "err", err)
	}
}

// restore rebuilds a group from its stored metadata at load: a group that was stable stays
// stable with the same members, generation and assignments, and its members' sessions start
// now.
func (g *group) restore(v *kmsg.GroupMetadataValue) {
	g.mu.Lock()
	defer g.mu.Unlock()
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

// stop cancels the group's timers and answers its blocked requests (coordinator shutdown or
// group deletion).
func (g *group) stop(code int16) {
	g.stopJoinTimer()
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	for _, m := range g.members {
		if m.hb != nil {
			m.hb.Stop()
			m.hb = nil
		}
		m.hbSeq++
		if m.join != nil {
			m.join <- joinResult{errCode: code, generation: -1, memberID: m.id}
			m.join = nil
		}
		if m.sync != nil {
			m.sync <- syncResult{errCode: code}
			m.sync = nil
		}
	}
}
