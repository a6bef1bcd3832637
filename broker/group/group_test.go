package group

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinMemberIDRequired(t *testing.T) {
	h := newMachine(t, nil)
	r1 := h.do(joinReq(4, "g", "")).(*kmsg.JoinGroupResponse)
	if r1.ErrorCode != errMemberIDRequired || r1.MemberID == "" {
		t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED with an id", r1.ErrorCode, r1.MemberID)
	}
	if h.heartbeat("g", r1.MemberID, 0) != errUnknownMemberID { // group is empty
		t.Fatal("heartbeat of a pending member in an empty group should be UNKNOWN_MEMBER_ID")
	}
	ch := h.async(joinReq(4, "g", r1.MemberID))
	h.joining("g", 1)
	h.advance(2 * time.Second)
	notDone(t, ch)
	h.advance(time.Second) // initial delay (3 s) over
	r2 := wait[*kmsg.JoinGroupResponse](t, ch)
	if r2.ErrorCode != 0 || r2.MemberID != r1.MemberID || r2.LeaderID != r1.MemberID || r2.Generation != 1 ||
		r2.Protocol == nil || *r2.Protocol != "range" || len(r2.Members) != 1 {
		t.Fatalf("second join: %+v", r2)
	}
	if got := h.state("g"); got != stateCompletingRebalance {
		t.Fatalf("state %v, want CompletingRebalance", got)
	}
	// An unknown member id is refused.
	if r := h.do(joinReq(4, "g", "nobody")).(*kmsg.JoinGroupResponse); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("join with unknown id: error %d", r.ErrorCode)
	}
}

func TestPendingMemberExpires(t *testing.T) {
	h := newMachine(t, nil)
	r1 := h.do(joinReq(4, "g", "")).(*kmsg.JoinGroupResponse)
	if n := len(h.group("g").pending); n != 1 {
		t.Fatalf("%d pending members, want 1", n)
	}
	h.advance(testSession + time.Millisecond)
	if n := len(h.group("g").pending); n != 0 {
		t.Fatalf("%d pending members after their session timeout, want 0", n)
	}
	if r := h.do(joinReq(4, "g", r1.MemberID)).(*kmsg.JoinGroupResponse); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("join with expired pending id: error %d", r.ErrorCode)
	}
}

func TestInitialDelayRebalancesOnce(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	for i := 0; i < 3; i++ {
		chs = append(chs, h.async(joinReq(3, "g", "")))
		h.joining("g", i+1)
		h.advance(2 * time.Second) // each new member extends the delay
	}
	for _, ch := range chs {
		notDone(t, ch)
	}
	h.advance(3 * time.Second)
	var leaders, withMembers int
	for _, ch := range chs {
		r := wait[*kmsg.JoinGroupResponse](t, ch)
		if r.ErrorCode != 0 || r.Generation != 1 {
			t.Fatalf("join: error %d generation %d", r.ErrorCode, r.Generation)
		}
		if r.MemberID == r.LeaderID {
			leaders++
		}
		if len(r.Members) > 0 {
			withMembers++
			if len(r.Members) != 3 {
				t.Fatalf("leader got %d members, want 3", len(r.Members))
			}
		}
	}
	if leaders != 1 || withMembers != 1 {
		t.Fatalf("%d leaders, %d responses with members; want 1 and 1", leaders, withMembers)
	}
}

func TestInitialDelayBoundedByRebalanceTimeout(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	// New members keep arriving every 2 s; the delay stops extending at the rebalance
	// timeout (5 s here).
	opt := withTimeouts(testSession, 5*time.Second)
	chs = append(chs, h.async(joinReq(3, "g", "", opt)))
	h.joining("g", 1)
	for i := 2; i <= 3; i++ {
		h.advance(2 * time.Second)
		chs = append(chs, h.async(joinReq(3, "g", "", opt)))
		h.joining("g", i)
	}
	h.advance(1 * time.Second) // 5 s after the first join
	for _, ch := range chs {
		if r := wait[*kmsg.JoinGroupResponse](t, ch); r.ErrorCode != 0 || r.Generation != 1 {
			t.Fatalf("join: error %d generation %d", r.ErrorCode, r.Generation)
		}
	}
}

func TestProtocolSelection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members [][]string
		want    string
	}{
		{"only common", [][]string{{"sticky", "range"}, {"range", "sticky"}, {"range"}}, "range"},
		{"most votes", [][]string{{"a", "b"}, {"b", "a"}, {"b", "a"}}, "b"},
		{"tie goes to first member", [][]string{{"a", "b"}, {"b", "a"}}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newMachine(t, nil)
			var chs []*call
			for i, ps := range tc.members {
				chs = append(chs, h.async(joinReq(3, "g", "", withProtocols(ps...))))
				h.joining("g", i+1)
			}
			h.advance(6 * time.Second) // members that joined during the 3 s delay extend it once
			for _, ch := range chs {
				r := wait[*kmsg.JoinGroupResponse](t, ch)
				if r.ErrorCode != 0 || *r.Protocol != tc.want {
					t.Fatalf("join: error %d protocol %q, want %q", r.ErrorCode, *r.Protocol, tc.want)
				}
				for _, m := range r.Members {
					if string(m.ProtocolMetadata) != "meta-"+tc.want {
						t.Fatalf("leader got metadata %q for %s", m.ProtocolMetadata, m.MemberID)
					}
				}
			}
		})
	}
}

func TestInconsistentProtocol(t *testing.T) {
	h := newMachine(t, nil)
	h.stableGroup("g", 1, withProtocols("range", "roundrobin"))
	if r := h.do(joinReq(3, "g", "", withProtocols("sticky"))).(*kmsg.JoinGroupResponse); r.ErrorCode != errInconsistentProtocol {
		t.Fatalf("join with no common protocol: error %d", r.ErrorCode)
	}
	r := joinReq(3, "g", "")
	r.ProtocolType = "connect"
	if resp := h.do(r).(*kmsg.JoinGroupResponse); resp.ErrorCode != errInconsistentProtocol {
		t.Fatalf("join with another protocol type: error %d", resp.ErrorCode)
	}
	if got := h.state("g"); got != stateStable {
		t.Fatalf("state %v after refused joins, want Stable", got)
	}
}

func TestSyncWaitsForLeader(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	for i := 0; i < 3; i++ {
		chs = append(chs, h.async(joinReq(3, "g", "")))
		h.joining("g", i+1)
	}
	h.advance(6 * time.Second) // members that joined during the 3 s delay extend it once
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		resps = append(resps, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	var leader *kmsg.JoinGroupResponse
	var syncs []*call
	var followers []string
	for _, r := range resps {
		if r.MemberID == r.LeaderID {
			leader = r
			continue
		}
		followers = append(followers, r.MemberID)
		syncs = append(syncs, h.async(syncReq(5, "g", r.MemberID, r.Generation, nil)))
	}
	h.syncing("g", 2)
	for _, ch := range syncs {
		notDone(t, ch)
	}
	// Heartbeats while waiting for the leader are fine.
	if code := h.heartbeat("g", followers[0], 1); code != 0 {
		t.Fatalf("heartbeat in CompletingRebalance: %d", code)
	}
	// Commits are not: the generation has no assignment yet.
	if code := h.commit("g", followers[0], 1, map[int32]int64{0: 1}); code != errRebalanceInProgress {
		t.Fatalf("commit in CompletingRebalance: %d", code)
	}
	assign := map[string]string{}
	for _, m := range leader.Members {
		assign[m.MemberID] = "assign-" + m.MemberID
	}
	sr := h.do(syncReq(5, "g", leader.MemberID, 1, assign)).(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assign-"+leader.MemberID || *sr.Protocol != "range" || *sr.ProtocolType != "consumer" {
		t.Fatalf("leader sync: %+v", sr)
	}
	for i, ch := range syncs {
		r := wait[*kmsg.SyncGroupResponse](t, ch)
		if r.ErrorCode != 0 || string(r.MemberAssignment) != "assign-"+followers[i] {
			t.Fatalf("follower sync: error %d assignment %q", r.ErrorCode, r.MemberAssignment)
		}
	}
	if got := h.state("g"); got != stateStable {
		t.Fatalf("state %v, want Stable", got)
	}
	// A sync in the stable group returns the member's assignment again; wrong generations
	// and members are refused.
	if r := h.do(syncReq(5, "g", followers[0], 1, nil)).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || string(r.MemberAssignment) != "assign-"+followers[0] {
		t.Fatalf("repeated sync: %+v", r)
	}
	if r := h.do(syncReq(5, "g", followers[0], 0, nil)).(*kmsg.SyncGroupResponse); r.ErrorCode != errIllegalGeneration {
		t.Fatalf("sync with old generation: %d", r.ErrorCode)
	}
	if r := h.do(syncReq(5, "g", "nobody", 1, nil)).(*kmsg.SyncGroupResponse); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("sync of unknown member: %d", r.ErrorCode)
	}
	bad := syncReq(5, "g", followers[0], 1, nil)
	bad.Protocol = kmsg.StringPtr("roundrobin")
	if r := h.do(bad).(*kmsg.SyncGroupResponse); r.ErrorCode != errInconsistentProtocol {
		t.Fatalf("sync with another protocol: %d", r.ErrorCode)
	}
}

func TestJoinAndHeartbeatDuringRebalance(t *testing.T) {
	h := newMachine(t, nil)
	rs := h.stableGroup("g", 2)
	// A third member joins: the others learn it from their heartbeats.
	ch3 := h.async(joinReq(3, "g", ""))
	h.joining("g", 1)
	if got := h.state("g"); got != statePreparingRebalance {
		t.Fatalf("state %v, want PreparingRebalance", got)
	}
	for _, r := range rs {
		if code := h.heartbeat("g", r.MemberID, r.Generation); code != errRebalanceInProgress {
			t.Fatalf("heartbeat during rebalance: %d", code)
		}
	}
	// Commits of the current generation are still accepted while preparing.
	if code := h.commit("g", rs[0].MemberID, rs[0].Generation, map[int32]int64{0: 5}); code != 0 {
		t.Fatalf("commit while preparing rebalance: %d", code)
	}
	var chs []*call
	for i, r := range rs {
		chs = append(chs, h.async(joinReq(3, "g", r.MemberID)))
		if i == 0 {
			h.joining("g", 2)
			notDone(t, ch3)
		}
	}
	chs = append(chs, ch3)
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		r := wait[*kmsg.JoinGroupResponse](t, ch)
		if r.ErrorCode != 0 || r.Generation != 2 {
			t.Fatalf("rejoin: error %d generation %d", r.ErrorCode, r.Generation)
		}
		resps = append(resps, r)
	}
	if resps[0].LeaderID != rs[0].LeaderID {
		t.Fatalf("leader changed from %s to %s although it stayed", rs[0].LeaderID, resps[0].LeaderID)
	}
	h.syncAll("g", resps)
	// The old generation is now stale.
	if code := h.heartbeat("g", rs[0].MemberID, 1); code != errIllegalGeneration {
		t.Fatalf("heartbeat with old generation: %d", code)
	}
}

func TestFollowerRejoinWithoutChangeKeepsGeneration(t *testing.T) {
	h := newMachine(t, nil)
	rs := h.stableGroup("g", 2)
	var follower *kmsg.JoinGroupResponse
	for _, r := range rs {
		if r.MemberID != r.LeaderID {
			follower = r
		}
	}
	r := h.do(joinReq(3, "g", follower.MemberID)).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 || r.Generation != 1 || len(r.Members) != 0 {
		t.Fatalf("rejoin: %+v", r)
	}
	if got := h.state("g"); got != stateStable {
		t.Fatalf("state %v, want Stable", got)
	}
	// Changed metadata forces a rebalance.
	ch := h.async(joinReq(3, "g", follower.MemberID, withProtocols("range", "sticky")))
	h.joining("g", 1)
	if got := h.state("g"); got != statePreparingRebalance {
		t.Fatalf("state %v, want PreparingRebalance", got)
	}
	notDone(t, ch)
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	h := newMachine(t, nil)
	rs := h.stableGroup("g", 2)
	alive, dead := rs[0], rs[1]
	// alive heartbeats every 3 s; dead stays silent past its 10 s session.
	for i := 0; i < 3; i++ {
		h.advance(3 * time.Second)
		if code := h.heartbeat("g", alive.MemberID, 1); code != 0 {
			t.Fatalf("heartbeat %d: %d", i, code)
		}
	}
	h.advance(1001 * time.Millisecond)
	if code := h.heartbeat("g", alive.MemberID, 1); code != errRebalanceInProgress {
		t.Fatalf("heartbeat after the other member expired: %d, want REBALANCE_IN_PROGRESS", code)
	}
	if code := h.heartbeat("g", dead.MemberID, 1); code != errUnknownMemberID {
		t.Fatalf("heartbeat of expired member: %d", code)
	}
	r := h.do(joinReq(3, "g", alive.MemberID)).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 || r.Generation != 2 || len(r.Members) != 1 || r.LeaderID != alive.MemberID {
		t.Fatalf("rejoin: %+v", r)
	}
	// The last member's session expires too: the group becomes empty.
	h.advance(testSession + time.Millisecond)
	if got := h.state("g"); got != stateEmpty {
		t.Fatalf("state %v, want Empty", got)
	}
}

func TestRebalanceTimeoutRemovesLaggards(t *testing.T) {
	h := newMachine(t, nil)
	rs := h.stableGroup("g", 2)
	a, b := rs[0], rs[1]
	// A new member starts a rebalance; a rejoins, b keeps heartbeating but never rejoins.
	chNew := h.async(joinReq(3, "g", ""))
	h.joining("g", 1)
	chA := h.async(joinReq(3, "g", a.MemberID))
	h.joining("g", 2)
	for elapsed := time.Duration(0); elapsed < testRebalance-5*time.Second; elapsed += 5 * time.Second {
		h.advance(5 * time.Second)
		if code := h.heartbeat("g", b.MemberID, 1); code != errRebalanceInProgress {
			t.Fatalf("heartbeat of laggard: %d", code)
		}
		notDone(t, chA)
	}
	h.advance(5 * time.Second) // rebalance timeout (30 s) over
	ra := wait[*kmsg.JoinGroupResponse](t, chA)
	rn := wait[*kmsg.JoinGroupResponse](t, chNew)
	if ra.ErrorCode != 0 || ra.Generation != 2 || rn.Generation != 2 {
		t.Fatalf("joins after rebalance timeout: %+v %+v", ra, rn)
	}
	leader := ra
	if rn.MemberID == rn.LeaderID {
		leader = rn
	}
	if len(leader.Members) != 2 || slices.ContainsFunc(leader.Members, func(m kmsg.JoinGroupResponseMember) bool { return m.MemberID == b.MemberID }) {
		t.Fatalf("members after timeout: %+v", leader.Members)
	}
	if code := h.heartbeat("g", b.MemberID, 1); code != errUnknownMemberID {
		t.Fatalf("heartbeat of removed laggard: %d", code)
	}
}

func TestLeaveGroup(t *testing.T) {
	h := newMachine(t, nil)
	rs := h.stableGroup("g", 3)
	// v0 single leave.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "g", rs[2].MemberID
	if r := h.do(lv).(*kmsg.LeaveGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("leave v0: %d", r.ErrorCode)
	}
	if code := h.heartbeat("g", rs[0].MemberID, 1); code != errRebalanceInProgress {
		t.Fatalf("heartbeat after leave: %d", code)
	}
	// v3 batched leave: one known member, one unknown.
	lv = kmsg.NewPtrLeaveGroupRequest()
	lv.Version = 5
	lv.Group = "g"
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: rs[1].MemberID}, {MemberID: "nobody"}}
	r := h.do(lv).(*kmsg.LeaveGroupResponse)
	if r.ErrorCode != 0 || len(r.Members) != 2 || r.Members[0].ErrorCode != 0 || r.Members[1].ErrorCode != errUnknownMemberID {
		t.Fatalf("batched leave: %+v", r)
	}
	// The remaining member rejoins alone: the rebalance completes at once.
	jr := h.do(joinReq(3, "g", rs[0].MemberID)).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 || jr.Generation != 2 || len(jr.Members) != 1 {
		t.Fatalf("rejoin: %+v", jr)
	}
	// A member waiting in JoinGroup that leaves gets UNKNOWN_MEMBER_ID there.
	h.syncAll("g", []*kmsg.JoinGroupResponse{jr})
	ch := h.async(joinReq(3, "g", ""))
	h.joining("g", 1)
	g := h.group("g")
	if n := len(g.members); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
	var newID string
	for id, m := range g.members {
		if m.join != 0 {
			newID = id
		}
	}
	lv = kmsg.NewPtrLeaveGroupRequest()
	lv.Version = 1
	lv.Group, lv.MemberID = "g", newID
	if r := h.do(lv).(*kmsg.LeaveGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("leave of joining member: %d", r.ErrorCode)
	}
	if r := wait[*kmsg.JoinGroupResponse](t, ch); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("join of a member that left: %d", r.ErrorCode)
	}
}

func TestStaticMemberRestart(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	for i, inst := range []string{"host-a", "host-b"} {
		chs = append(chs, h.async(joinReq(5, "g", "", withInstance(inst))))
		h.joining("g", i+1)
	}
	h.advance(6 * time.Second) // members that joined during the 3 s delay extend it once
	var rs []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		r := wait[*kmsg.JoinGroupResponse](t, ch)
		if r.ErrorCode != 0 {
			t.Fatalf("static join: %d", r.ErrorCode) // static members skip MEMBER_ID_REQUIRED
		}
		rs = append(rs, r)
	}
	h.syncAll("g", rs)
	// host-b restarts: it joins again without a member id.
	old := rs[1]
	r := h.do(joinReq(5, "g", "", withInstance("host-b"))).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 || r.Generation != old.Generation || r.MemberID == old.MemberID || r.MemberID == "" {
		t.Fatalf("static rejoin: %+v", r)
	}
	if got := h.state("g"); got != stateStable {
		t.Fatalf("state %v after static rejoin, want Stable (no rebalance)", got)
	}
	sr := h.do(syncReq(5, "g", r.MemberID, r.Generation, nil)).(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assign-"+old.MemberID {
		t.Fatalf("sync after static rejoin: error %d assignment %q, want the old assignment", sr.ErrorCode, sr.MemberAssignment)
	}
	// The old incarnation is fenced.
	hb := heartbeatReq(4, "g", old.MemberID, old.Generation)
	hb.InstanceID = kmsg.StringPtr("host-b")
	if code := h.do(hb).(*kmsg.HeartbeatResponse).ErrorCode; code != errFencedInstanceID {
		t.Fatalf("heartbeat of fenced member: %d", code)
	}
	cr := commitReq(8, "g", old.MemberID, old.Generation, map[int32]int64{0: 1})
	cr.InstanceID = kmsg.StringPtr("host-b")
	if code := h.do(cr).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != errFencedInstanceID {
		t.Fatalf("commit of fenced member: %d", code)
	}
	// The other member never noticed.
	if code := h.heartbeat("g", rs[0].MemberID, 1); code != 0 {
		t.Fatalf("heartbeat of the other member: %d", code)
	}
	// A static member leaving by instance id starts a rebalance.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version = 4
	lv.Group = "g"
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: old.MemberID, InstanceID: kmsg.StringPtr("host-b")}}
	if lr := h.do(lv).(*kmsg.LeaveGroupResponse); lr.Members[0].ErrorCode != errFencedInstanceID {
		t.Fatalf("leave with fenced member id: %+v", lr.Members)
	}
	lv.Members[0].MemberID = ""
	if lr := h.do(lv).(*kmsg.LeaveGroupResponse); lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %+v", lr.Members)
	}
	if got := h.state("g"); got != statePreparingRebalance {
		t.Fatalf("state %v after static leave, want PreparingRebalance", got)
	}
}

func TestStaticLeaderRestart(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	for i, inst := range []string{"host-a", "host-b"} {
		chs = append(chs, h.async(joinReq(7, "g", "", withInstance(inst))))
		h.joining("g", i+1)
	}
	h.advance(6 * time.Second) // members that joined during the 3 s delay extend it once
	var rs []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		rs = append(rs, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	h.syncAll("g", rs)
	leader := rs[0]
	if leader.MemberID != leader.LeaderID {
		t.Fatal("first member is not the leader")
	}
	r := h.do(joinReq(7, "g", "", withInstance("host-a"))).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 || r.LeaderID != r.MemberID || len(r.Members) != 2 || r.Generation != 1 {
		t.Fatalf("static leader rejoin: %+v", r)
	}
	// The leader computes a plan again; the stable group keeps the current assignment.
	sr := h.do(syncReq(5, "g", r.MemberID, 1, map[string]string{r.MemberID: "other"})).(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assign-"+leader.MemberID {
		t.Fatalf("leader sync after static rejoin: %+v", sr)
	}
}

func TestSyncTimeoutRemovesSilentLeader(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	for i := 0; i < 2; i++ {
		chs = append(chs, h.async(joinReq(3, "g", "")))
		h.joining("g", i+1)
	}
	h.advance(6 * time.Second)
	var leader, follower *kmsg.JoinGroupResponse
	for _, ch := range chs {
		r := wait[*kmsg.JoinGroupResponse](t, ch)
		if r.MemberID == r.LeaderID {
			leader = r
		} else {
			follower = r
		}
	}
	sync := h.async(syncReq(3, "g", follower.MemberID, 1, nil))
	h.syncing("g", 1)
	// The leader heartbeats but never sends its assignment.
	for i := 0; i < 5; i++ {
		h.advance(5 * time.Second)
		if code := h.heartbeat("g", leader.MemberID, 1); code != 0 {
			t.Fatalf("leader heartbeat: %d", code)
		}
		notDone(t, sync)
	}
	h.advance(5 * time.Second) // rebalance timeout (30 s) since the join completed
	if r := wait[*kmsg.SyncGroupResponse](t, sync); r.ErrorCode != errRebalanceInProgress {
		t.Fatalf("follower sync: %d, want REBALANCE_IN_PROGRESS", r.ErrorCode)
	}
	if code := h.heartbeat("g", leader.MemberID, 1); code != errUnknownMemberID {
		t.Fatalf("heartbeat of the removed leader: %d", code)
	}
	r := h.do(joinReq(3, "g", follower.MemberID)).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 || r.Generation != 2 || r.LeaderID != follower.MemberID || len(r.Members) != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
}

func TestStaticRejoinDuringRebalance(t *testing.T) {
	h := newMachine(t, nil)
	var chs []*call
	for i, inst := range []string{"host-a", "host-b"} {
		chs = append(chs, h.async(joinReq(5, "g", "", withInstance(inst))))
		h.joining("g", i+1)
	}
	h.advance(6 * time.Second)
	var rs []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		rs = append(rs, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	h.syncAll("g", rs)
	// A dynamic member joins: rebalance. host-a rejoins normally; host-b restarts meanwhile
	// and rejoins without its member id: it takes its place in this rebalance.
	chNew := h.async(joinReq(3, "g", ""))
	h.joining("g", 1)
	chA := h.async(joinReq(5, "g", rs[0].MemberID, withInstance("host-a")))
	h.joining("g", 2)
	chB := h.async(joinReq(5, "g", "", withInstance("host-b")))
	var got []*kmsg.JoinGroupResponse
	for _, ch := range []*call{chNew, chA, chB} {
		r := wait[*kmsg.JoinGroupResponse](t, ch)
		if r.ErrorCode != 0 || r.Generation != 2 {
			t.Fatalf("join: %+v", r)
		}
		got = append(got, r)
	}
	if got[2].MemberID == rs[1].MemberID {
		t.Fatal("restarted static member kept its old member id")
	}
	h.syncAll("g", got)
	hb := heartbeatReq(4, "g", rs[1].MemberID, 2)
	hb.InstanceID = kmsg.StringPtr("host-b")
	if code := h.do(hb).(*kmsg.HeartbeatResponse).ErrorCode; code != errFencedInstanceID {
		t.Fatalf("old host-b heartbeat: %d", code)
	}
	// A static member whose JoinGroup is pending when it restarts: the old request is fenced.
	chC := h.async(joinReq(5, "g", "", withInstance("host-c")))
	h.joining("g", 1)
	chC2 := h.async(joinReq(5, "g", "", withInstance("host-c")))
	if r := wait[*kmsg.JoinGroupResponse](t, chC); r.ErrorCode != errFencedInstanceID {
		t.Fatalf("superseded static join: %d", r.ErrorCode)
	}
	for _, r := range got {
		h.async(joinReq(5, "g", r.MemberID, withInstance(map[int]string{1: "host-a", 2: "host-b"}[slices.Index(got, r)])))
	}
	if r := wait[*kmsg.JoinGroupResponse](t, chC2); r.ErrorCode != 0 || r.Generation != 3 {
		t.Fatalf("static join after restart: %+v", r)
	}
}

// TestMetadataRecords checks the records a group asks to store: one after each completed
// rebalance, with the members' assignments, and one when a static member's new id replaces
// its old one (no rebalance); heartbeats ask for none.
func TestMetadataRecords(t *testing.T) {
	h := newMachine(t, nil)
	first := h.async(joinReq(5, "g", "", withInstance("host-a")))
	h.advance(3 * time.Second) // the initial delay
	rs := []*kmsg.JoinGroupResponse{wait[*kmsg.JoinGroupResponse](t, first)}
	h.syncAll("g", rs)
	decode := func(i int) *kmsg.GroupMetadataValue {
		t.Helper()
		recs := h.records["g"]
		if len(recs) <= i {
			t.Fatalf("%d metadata records, want more than %d", len(recs), i)
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(recs[i]); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := decode(0)
	if v.Generation != 1 || len(v.Members) != 1 || *v.Protocol != "range" || *v.Leader != rs[0].LeaderID {
		t.Fatalf("record after the first rebalance: %+v", v)
	}
	for _, m := range v.Members {
		if string(m.Assignment) != "assign-"+m.MemberID {
			t.Fatalf("member %s stored with assignment %q", m.MemberID, m.Assignment)
		}
	}
	for _, r := range rs {
		h.heartbeat("g", r.MemberID, 1)
	}
	if n := len(h.records["g"]); n != 1 {
		t.Fatalf("%d records after heartbeats, want 1", n)
	}
	r := h.do(joinReq(5, "g", "", withInstance("host-a"))).(*kmsg.JoinGroupResponse)
	v = decode(1)
	if v.Generation != 1 || len(v.Members) != 1 || *v.Leader != r.MemberID || !slices.ContainsFunc(v.Members, func(m kmsg.GroupMetadataValueMember) bool { return m.MemberID == r.MemberID }) {
		t.Fatalf("record after the static rejoin as %s: %+v", r.MemberID, v)
	}
}
