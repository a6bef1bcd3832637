package group

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
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

// A group is a pure state machine: Step takes one event (a request, a timer firing, a
// restore from storage, a stop) and returns an output that says what the caller must do —
// answer requests, arm or stop timers, write the group's metadata record. A group does no IO,
// takes no locks and reads no clock: the time of an event is passed to Step. The Coordinator
// runs every Step of a group under that group's mutex and does the IO afterwards.

// waiterID names one request a group answers (0: none). A JoinGroup or SyncGroup may be
// answered by a later Step than its own; every other request is answered by its own Step.
type waiterID uint64

// event is one input of a group's Step.
type event interface{ isEvent() }

// joinEvent is a JoinGroup, answered with a joinResult.
type joinEvent struct {
	from waiterID
	req  joinRequest
}

// syncEvent is a SyncGroup, answered with a syncResult.
type syncEvent struct {
	from                            waiterID
	generation                      int32
	memberID                        string
	instanceID, protocolType, proto *string
	assignments                     map[string][]byte // by member id
}

// heartbeatEvent is a Heartbeat, answered with an error code.
type heartbeatEvent struct {
	from       waiterID
	generation int32
	memberID   string
	instanceID *string
}

// leaveEvent is one member of a LeaveGroup, answered with an error code.
type leaveEvent struct {
	from       waiterID
	memberID   string
	instanceID *string
}

// commitEvent checks the generation and member of an OffsetCommit, answered with an error
// code (0: the offsets may be stored).
type commitEvent struct {
	from       waiterID
	generation int32
	memberID   string
	instanceID *string
}

// deleteEvent is a DeleteGroups of this group, answered with 0 (the group is now Dead) or
// NON_EMPTY_GROUP.
type deleteEvent struct{ from waiterID }

// timerEvent is the firing of a timer the group armed and has not stopped since.
type timerEvent struct{ key timerKey }

// restoreEvent rebuilds the group from its stored metadata at load.
type restoreEvent struct{ value *kmsg.GroupMetadataValue }

// stopEvent stops the group (coordinator shutdown, or the group is forgotten): its timers
// are stopped and its blocked requests answered with code. With dead, it becomes Dead.
type stopEvent struct {
	code int16
	dead bool
}

func (joinEvent) isEvent()      {}
func (syncEvent) isEvent()      {}
func (heartbeatEvent) isEvent() {}
func (leaveEvent) isEvent()     {}
func (commitEvent) isEvent()    {}
func (deleteEvent) isEvent()    {}
func (timerEvent) isEvent()     {}
func (restoreEvent) isEvent()   {}
func (stopEvent) isEvent()      {}

// timerKind says what a timer of a group is for.
type timerKind uint8

const (
	// timerPhase bounds the current phase: the initial rebalance delay or the rebalance
	// timeout of PreparingRebalance, the wait for the leader's SyncGroup in
	// CompletingRebalance. A group has at most one.
	timerPhase timerKind = iota + 1
	// timerSession is a member's session timeout (member: the member's seq, which a static
	// member keeps when its member id changes).
	timerSession
	// timerPending is the wait for the JoinGroup of a member id handed out with
	// MEMBER_ID_REQUIRED (id: that member id).
	timerPending
)

// timerKey names one timer of a group; arming a key again replaces its timer.
type timerKey struct {
	kind   timerKind
	member uint64
	id     string
}

// timerOp arms (after > 0 or stop false) or stops one timer.
type timerOp struct {
	key   timerKey
	after time.Duration
	stop  bool
}

// answer is the answer to one request: join for a joinEvent, sync for a syncEvent, code
// for the others.
type answer struct {
	to   waiterID
	join *joinResult
	sync *syncResult
	code int16
}

// output is what one Step asks of its caller, to be done in this order: apply the timer
// operations, write the metadata record, deliver the answers.
type output struct {
	timers     []timerOp
	record     []byte // the group's metadata value to store (nil: none)
	answers    []answer
	rebalances int // join phases completed
}

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

	join waiterID // the member's JoinGroup waiting for the rebalance
	sync waiterID // the member's SyncGroup waiting for the leader
}

// phaseAction is what the phase timer does when it fires.
type phaseAction uint8

const (
	phaseNone         phaseAction = iota
	phaseInitialDelay             // the initial delay is over (or extended)
	phaseJoin                     // the rebalance timeout is over: complete the join
	phaseSync                     // the leader did not sync in time
)

// groupConfig is what a group needs of the coordinator's configuration.
type groupConfig struct {
	initialRebalanceDelay time.Duration // 0: none
}

// group is one consumer group's state machine. It is not safe for concurrent use.
type group struct {
	id  string
	cfg groupConfig
	log *slog.Logger

	// Set for the duration of one Step.
	now time.Time
	out *output

	state        state
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string   // group.instance.id -> member id
	pending      map[string]struct{} // member ids handed out with MEMBER_ID_REQUIRED, not yet joined
	nextSeq      uint64
	emptySince   time.Time

	phase           phaseAction // armed phase timer's action
	initialDelay    bool        // the join phase is in its initial delay
	delayRemaining  time.Duration
	newMemberJoined bool
}

func newGroup(id string, cfg groupConfig, log *slog.Logger, now time.Time) *group {
	return &group{
		id:         id,
		cfg:        cfg,
		log:        log,
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]struct{}),
		emptySince: now,
	}
}

// Step applies one event at time now and returns what the caller must do.
func (g *group) Step(now time.Time, ev event) output {
	var out output
	g.now, g.out = now, &out
	defer func() { g.out = nil }()
	switch e := ev.(type) {
	case joinEvent:
		g.join(e.from, e.req)
	case syncEvent:
		g.sync(e)
	case heartbeatEvent:
		g.reply(e.from, g.heartbeat(e.generation, e.memberID, e.instanceID))
	case leaveEvent:
		g.reply(e.from, g.leave(e.memberID, e.instanceID))
	case commitEvent:
		g.reply(e.from, g.checkCommit(e.generation, e.memberID, e.instanceID))
	case deleteEvent:
		g.reply(e.from, g.delete())
	case timerEvent:
		g.timerFired(e.key)
	case restoreEvent:
		g.restore(e.value)
	case stopEvent:
		g.stop(e.code, e.dead)
	default:
		panic(fmt.Sprintf("group: unknown event %T", ev))
	}
	return out
}

// reply answers a request with an error code.
func (g *group) reply(to waiterID, code int16) {
	g.out.answers = append(g.out.answers, answer{to: to, code: code})
}

func (g *group) replyJoin(to waiterID, res joinResult) {
	g.out.answers = append(g.out.answers, answer{to: to, join: &res})
}

func (g *group) replySync(to waiterID, res syncResult) {
	g.out.answers = append(g.out.answers, answer{to: to, sync: &res})
}

func (g *group) arm(key timerKey, d time.Duration) {
	g.out.timers = append(g.out.timers, timerOp{key: key, after: d})
}

func (g *group) disarm(key timerKey) {
	g.out.timers = append(g.out.timers, timerOp{key: key, stop: true})
}

func sessionKey(m *member) timerKey { return timerKey{kind: timerSession, member: m.seq} }

func pendingKey(id string) timerKey { return timerKey{kind: timerPending, id: id} }

var phaseKey = timerKey{kind: timerPhase}

// timerFired dispatches a timer event.
func (g *group) timerFired(key timerKey) {
	switch key.kind {
	case timerPhase:
		action := g.phase
		g.phase = phaseNone
		switch action {
		case phaseInitialDelay:
			g.initialDelayExpired()
		case phaseJoin:
			g.completeJoin()
		case phaseSync:
			g.syncExpired()
		}
	case timerSession:
		for _, m := range g.members {
			if m.seq == key.member {
				g.sessionExpired(m)
				return
			}
		}
	case timerPending:
		g.pendingExpired(key.id)
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

// stop answers the group's blocked requests with code and stops its timers (coordinator
// shutdown, group deletion or expiry).
func (g *group) stop(code int16, dead bool) {
	if dead {
		g.state = stateDead
	}
	g.stopPhase()
	for id := range g.pending {
		g.disarm(pendingKey(id))
		delete(g.pending, id)
	}
	for _, m := range g.orderedMembers() {
		g.disarm(sessionKey(m))
		if m.join != 0 {
			g.replyJoin(m.join, joinResult{errCode: code, generation: -1, memberID: m.id})
			m.join = 0
		}
		if m.sync != 0 {
			g.replySync(m.sync, syncResult{errCode: code})
			m.sync = 0
		}
	}
}

// idle reports whether the group is empty with nothing outstanding, so that it may be
// deleted or forgotten.
func (g *group) idle() bool {
	return (g.state == stateEmpty || g.state == stateDead) && len(g.members) == 0 && len(g.pending) == 0
}

// delete makes an idle group Dead.
func (g *group) delete() int16 {
	if !g.idle() {
		return errNonEmptyGroup
	}
	g.stop(errCoordinatorNotAvailable, true)
	return 0
}

// describe fills a DescribeGroups answer for the group.
func (g *group) describe(d *kmsg.DescribeGroupsResponseGroup) {
	d.State = g.state.String()
	d.ProtocolType = g.protocolType
	if g.state == stateStable || g.state == stateCompletingRebalance {
		d.Protocol = g.protocol
	}
	for _, m := range g.orderedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if g.state == stateStable {
			dm.ProtocolMetadata = m.metadataFor(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
}

// subscribedTopics returns the topics the members subscribe to by the consumer protocol,
// or nonConsumer if the group has members of another protocol type.
func (g *group) subscribedTopics() (topics map[string]bool, nonConsumer bool) {
	if len(g.members) > 0 && g.protocolType != "consumer" {
		return nil, true
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err == nil {
			for _, t := range meta.Topics {
				topics[t] = true
			}
		}
	}
	return topics, false
}
