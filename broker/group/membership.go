package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/server"
)

// JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the coordinator's side. The decode and
// encode functions are pure, so that tests drive a group's Step with the same events as the
// coordinator.

func (c *Coordinator) joinGroup(client server.Client, r *kmsg.JoinGroupRequest) reply {
	fail := func(code int16) reply {
		return reply{resp: encodeJoin(r, answer{join: &joinResult{errCode: code, generation: -1, memberID: r.MemberID}})}
	}
	if code := c.available(); code != 0 {
		return fail(code)
	}
	jr, code := decodeJoin(&c.cfg, client, r)
	if code != 0 {
		return fail(code)
	}
	cl := c.getOrCreate(r.Group)
	w, ch := c.ask(cl, func(from waiterID) event { return joinEvent{from: from, req: jr} })
	onClose := answer{join: &joinResult{errCode: errCoordinatorNotAvailable, generation: -1, memberID: r.MemberID}}
	return c.promise(cl, w, ch, func(a answer) kmsg.Response { return encodeJoin(r, a) }, onClose)
}

// decodeJoin validates a JoinGroup and converts it; a non-zero code is the answer.
func decodeJoin(cfg *Config, client server.Client, r *kmsg.JoinGroupRequest) (joinRequest, int16) {
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if r.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	switch {
	case r.Group == "":
		return joinRequest{}, errInvalidGroupID
	case session < cfg.MinSessionTimeout || session > cfg.MaxSessionTimeout:
		return joinRequest{}, errInvalidSessionTimeout
	case r.ProtocolType == "" || len(r.Protocols) == 0:
		return joinRequest{}, errInconsistentProtocol
	}
	jr := joinRequest{
		version:          r.Version,
		memberID:         r.MemberID,
		clientID:         client.ID,
		clientHost:       client.Host,
		sessionTimeout:   session,
		rebalanceTimeout: rebalance,
		protocolType:     r.ProtocolType,
	}
	if r.Version >= 5 {
		jr.instanceID = nonEmpty(r.InstanceID)
	}
	for _, p := range r.Protocols {
		jr.protocols = append(jr.protocols, protocol{name: p.Name, metadata: slices.Clone(p.Metadata)})
	}
	return jr, 0
}

// encodeJoin answers r with a's joinResult.
func encodeJoin(r *kmsg.JoinGroupRequest, a answer) *kmsg.JoinGroupResponse {
	res := *a.join
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = res.errCode
	resp.Generation = res.generation
	resp.MemberID = res.memberID
	resp.LeaderID = res.leader
	resp.Protocol = strPtr(res.protocol)
	if r.Version >= 7 {
		resp.ProtocolType = strPtr(res.protocolType)
		if res.errCode != 0 {
			resp.Protocol, resp.ProtocolType = nil, nil
		}
	}
	resp.Members = res.members
	return resp
}

func (c *Coordinator) syncGroup(r *kmsg.SyncGroupRequest) reply {
	fail := func(code int16) reply { return reply{resp: encodeSync(r, answer{sync: &syncResult{errCode: code}})} }
	if code := c.available(); code != 0 {
		return fail(code)
	}
	if r.Group == "" {
		return fail(errInvalidGroupID)
	}
	cl := c.lookup(r.Group)
	if cl == nil {
		return fail(errUnknownMemberID)
	}
	ev := decodeSync(r)
	w, ch := c.ask(cl, func(from waiterID) event { ev.from = from; return ev })
	onClose := answer{sync: &syncResult{errCode: errCoordinatorNotAvailable}}
	return c.promise(cl, w, ch, func(a answer) kmsg.Response { return encodeSync(r, a) }, onClose)
}

// decodeSync converts a SyncGroup (its from is set by the caller).
func decodeSync(r *kmsg.SyncGroupRequest) syncEvent {
	ev := syncEvent{generation: r.Generation, memberID: r.MemberID}
	if len(r.GroupAssignment) > 0 {
		ev.assignments = make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			ev.assignments[a.MemberID] = slices.Clone(a.MemberAssignment)
		}
	}
	if r.Version >= 3 {
		ev.instanceID = nonEmpty(r.InstanceID)
	}
	if r.Version >= 5 {
		ev.protocolType, ev.proto = r.ProtocolType, r.Protocol
	}
	return ev
}

// encodeSync answers r with a's syncResult.
func encodeSync(r *kmsg.SyncGroupRequest, a answer) *kmsg.SyncGroupResponse {
	res := *a.sync
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = res.errCode
	resp.MemberAssignment = res.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	if r.Version >= 5 && res.errCode == 0 {
		resp.ProtocolType = strPtr(res.protocolType)
		resp.Protocol = strPtr(res.protocol)
	}
	return resp
}

func (c *Coordinator) heartbeat(r *kmsg.HeartbeatRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	cl := c.lookup(r.Group)
	if cl == nil {
		resp.ErrorCode = errUnknownMemberID
		return resp
	}
	ev := decodeHeartbeat(r)
	resp.ErrorCode = c.askNow(cl, func(from waiterID) event { ev.from = from; return ev }).code
	return resp
}

// decodeHeartbeat converts a Heartbeat (its from is set by the caller).
func decodeHeartbeat(r *kmsg.HeartbeatRequest) heartbeatEvent {
	ev := heartbeatEvent{generation: r.Generation, memberID: r.MemberID}
	if r.Version >= 3 {
		ev.instanceID = nonEmpty(r.InstanceID)
	}
	return ev
}

func (c *Coordinator) leaveGroup(r *kmsg.LeaveGroupRequest) kmsg.Response {
	evs := decodeLeave(r)
	codes := make([]int16, len(evs))
	code := c.available()
	var cl *cell
	if code == 0 {
		cl = c.lookup(r.Group)
	}
	for i, ev := range evs {
		switch {
		case code != 0:
		case cl == nil:
			codes[i] = errUnknownMemberID
		default:
			codes[i] = c.askNow(cl, func(from waiterID) event { ev.from = from; return ev }).code
		}
	}
	return encodeLeave(r, code, codes)
}

// decodeLeave converts a LeaveGroup into one event per member (their from is set by the
// caller).
func decodeLeave(r *kmsg.LeaveGroupRequest) []leaveEvent {
	if r.Version < 3 {
		return []leaveEvent{{memberID: r.MemberID}}
	}
	evs := make([]leaveEvent, 0, len(r.Members))
	for _, m := range r.Members {
		evs = append(evs, leaveEvent{memberID: m.MemberID, instanceID: nonEmpty(m.InstanceID)})
	}
	return evs
}

// encodeLeave answers r: code for the whole request (non-zero: codes are ignored), else
// codes, one per event of decodeLeave.
func encodeLeave(r *kmsg.LeaveGroupRequest, code int16, codes []int16) *kmsg.LeaveGroupResponse {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode = code; code != 0 {
		return resp
	}
	if r.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, m := range r.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = m.MemberID
		rm.InstanceID = m.InstanceID
		rm.ErrorCode = codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}
