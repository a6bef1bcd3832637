package group

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinMemberIDRequired(t *testing.T) {
	h := newHarness(t, nil)
	r1 := h.do(joinReq(4, "g", "")).(*kmsg.JoinGroupResponse)
	if r1.ErrorCode != errMemberIDRequired || r1.MemberID == "" {
		t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED with an id", r1.ErrorCode, r1.MemberID)
	}
	if h.heartbeat("g", r1.MemberID, 0) != errUnknownMemberID { // group is empty
		t.Fatal("heartbeat of a pending member in an empty group should be UNKNOWN_MEMBER_ID")
	}
	ch := h.async(joinReq(4, "g", r1.MemberID))
	h.waitJoining("g", 1)
	h.clk.Advance(2 * time.Second)
	notDone(t, ch)
	h.clk.Advance(time.Second) // initial delay (3 s) over
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
	h := newHarness(t, nil)
	r1 := h.do(joinReq(4, "g", "")).(*kmsg.JoinGroupResponse)
	h.waitFor("g", "pending member", func(g *group) bool { return len(g.pending) == 1 })
	h.clk.Advance(testSession + time.Millisecond)
	h.waitFor("g", "pending member gone", func(g *group) bool { return len(g.pending) == 0 })
	if r := h.do(joinReq(4, "g", r1.MemberID)).(*kmsg.JoinGroupResponse); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("join with expired pending id: error %d", r.ErrorCode)
	}
}

func TestInitialDelayRebalancesOnce(t *testing.T) {
	h := newHarness(t, nil)
	var chs []<-chan result
	for i := 0; i < 3; i++ {
		chs = append(chs, h.async(joinReq(3, "g", "")))
		h.waitJoining("g", i+1)
		h.clk.Advance(2 * time.Second) // each new member extends the delay
	}
	for _, ch := range chs {
		notDone(t, ch)
	}
	h.clk.Advance(3 * time.Second)
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
	h := newHarness(t, nil)
	var chs []<-chan result
	// New members keep arriving every 2 s; the delay stops extending at the rebalance
	// timeout (5 s here).
	opt := withTimeouts(testSession, 5*time.Second)
	chs = append(chs, h.async(joinReq(3, "g", "", opt)))
	h.waitJoining("g", 1)
	for i := 2; i <= 3; i++ {
		h.clk.Advance(2 * time.Second)
		chs = append(chs, h.async(joinReq(3, "g", "", opt)))
		h.waitJoining("g", i)
	}
	h.clk.Advance(1 * time.Second) // 5 s after the first join
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
			h := newHarness(t, nil)
			var chs []<-chan result
			for i, ps := range tc.members {
				chs = append(chs, h.async(joinReq(3, "g", "", withProtocols(ps...))))
				h.waitJoining("g", i+1)
			}
			h.clk.Advance(6 * time.Second) // members that joined during the 3 s delay extend it once
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
	h := newHarness(t, nil)
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

func TestSessionTimeoutBounds(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MinSessionTimeout = 6 * time.Second })
	r := h.do(joinReq(5, "g", "", withTimeouts(time.Second, testRebalance))).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != errInvalidSessionTimeout {
		t.Fatalf("error %d, want INVALID_SESSION_TIMEOUT", r.ErrorCode)
	}
}

func TestSyncWaitsForLeader(t *testing.T) {
	h := newHarness(t, nil)
	var chs []<-chan result
	for i := 0; i < 3; i++ {
		chs = append(chs, h.async(joinReq(3, "g", "")))
		h.waitJoining("g", i+1)
	}
	h.clk.Advance(6 * time.Second) // members that joined during the 3 s delay extend it once
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		resps = append(resps, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	var leader *kmsg.JoinGroupResponse
	var syncs []<-chan result
	var followers []string
	for _, r := range resps {
		if r.MemberID == r.LeaderID {
			leader = r
			continue
		}
		followers = append(followers, r.MemberID)
		syncs = append(syncs, h.async(syncReq(5, "g", r.MemberID, r.Generation, nil)))
	}
	h.waitSyncing("g", 2)
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
	h := newHarness(t, nil)
	rs := h.stableGroup("g", 2)
	// A third member joins: the others learn it from their heartbeats.
	ch3 := h.async(joinReq(3, "g", ""))
	h.waitJoining("g", 1)
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
	var chs []<-chan result
	for i, r := range rs {
		chs = append(chs, h.async(joinReq(3, "g", r.MemberID)))
		if i == 0 {
			h.waitJoining("g", 2)
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
	h := newHarness(t, nil)
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
	h.waitJoining("g", 1)
	if got := h.state("g"); got != statePreparingRebalance {
		t.Fatalf("state %v, want PreparingRebalance", got)
	}
	notDone(t, ch)
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	h := newHarness(t, nil)
	rs := h.stableGroup("g", 2)
	alive, dead := rs[0], rs[1]
	// alive heartbeats every 3 s; dead stays silent past its 10 s session.
	for i := 0; i < 3; i++ {
		h.clk.Advance(3 * time.Second)
		if code := h.heartbeat("g", alive.MemberID, 1); code != 0 {
			t.Fatalf("heartbeat %d: %d", i, code)
		}
	}
	h.clk.Advance(1001 * time.Millisecond)
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
	h.clk.Advance(testSession + time.Millisecond)
	if got := h.state("g"); got != stateEmpty {
		t.Fatalf("state %v, want Empty", got)
	}
}

func TestRebalanceTimeoutRemovesLaggards(t *testing.T) {
	h := newHarness(t, nil)
	rs := h.stableGroup("g", 2)
	a, b := rs[0], rs[1]
	// A new member starts a rebalance; a rejoins, b keeps heartbeating but never rejoins.
	chNew := h.async(joinReq(3, "g", ""))
	h.waitJoining("g", 1)
	chA := h.async(joinReq(3, "g", a.MemberID))
	h.waitJoining("g", 2)
	for elapsed := time.Duration(0); elapsed < testRebalance-5*time.Second; elapsed += 5 * time.Second {
		h.clk.Advance(5 * time.Second)
		if code := h.heartbeat("g", b.MemberID, 1); code != errRebalanceInProgress {
			t.Fatalf("heartbeat of laggard: %d", code)
		}
		notDone(t, chA)
	}
	h.clk.Advance(5 * time.Second) // rebalance timeout (30 s) over
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
	h := newHarness(t, nil)
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
	h.waitJoining("g", 1)
	h.waitFor("g", "two members", func(g *group) bool { return len(g.members) == 2 })
	var newID string
	g := h.c.lookup("g")
	g.mu.Lock()
	for id, m := range g.members {
		if m.join != nil {
			newID = id
		}
	}
	g.mu.Unlock()
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
	h := newHarness(t, nil)
	var chs []<-chan result
	for i, inst := range []string{"host-a", "host-b"} {
		chs = append(chs, h.async(joinReq(5, "g", "", withInstance(inst))))
		h.waitJoining("g", i+1)
	}
	h.clk.Advance(6 * time.Second) // members that joined during the 3 s delay extend it once
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
	h := newHarness(t, nil)
	var chs []<-chan result
	for i, inst := range []string{"host-a", "host-b"} {
		chs = append(chs, h.async(joinReq(7, "g", "", withInstance(inst))))
		h.waitJoining("g", i+1)
	}
	h.clk.Advance(6 * time.Second) // members that joined during the 3 s delay extend it once
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

func TestCommitValidation(t *testing.T) {
	h := newHarness(t, nil)
	// Simple consumer: no group at all.
	if code := h.commit("simple", "", -1, map[int32]int64{0: 10}); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	// v0 commit (no generation on the wire).
	r0 := commitReq(0, "simple", "", 0, map[int32]int64{1: 11})
	if code := h.do(r0).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("v0 commit: %d", code)
	}
	if got := h.fetch("simple", 0, 1, 2); got[0] != 10 || got[1] != 11 || got[2] != -1 {
		t.Fatalf("fetch: %v", got)
	}
	// A generation for a group that does not exist is stale.
	if code := h.commit("nogroup", "m", 3, map[int32]int64{0: 1}); code != errIllegalGeneration {
		t.Fatalf("commit to unknown group with generation: %d", code)
	}
	rs := h.stableGroup("g", 2)
	m := rs[0]
	if code := h.commit("g", m.MemberID, m.Generation, map[int32]int64{0: 100}); code != 0 {
		t.Fatalf("member commit: %d", code)
	}
	if code := h.commit("g", m.MemberID, m.Generation-1, map[int32]int64{0: 99}); code != errIllegalGeneration {
		t.Fatalf("stale generation commit: %d", code)
	}
	if code := h.commit("g", "ghost", m.Generation, map[int32]int64{0: 99}); code != errUnknownMemberID {
		t.Fatalf("unknown member commit: %d", code)
	}
	if code := h.commit("g", "", -1, map[int32]int64{0: 99}); code != errUnknownMemberID {
		t.Fatalf("simple commit into an active group: %d", code)
	}
	if got := h.fetch("g", 0); got[0] != 100 {
		t.Fatalf("fetch after refused commits: %v", got)
	}
	// Unknown partitions and oversized metadata are refused per partition.
	bad := commitReq(8, "simple", "", -1, map[int32]int64{17: 1})
	if code := h.do(bad).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != errUnknownTopicOrPartition {
		t.Fatalf("commit to unknown partition: %d", code)
	}
	big := commitReq(8, "simple", "", -1, map[int32]int64{0: 1})
	md := string(make([]byte, 5000))
	big.Topics[0].Partitions[0].Metadata = &md
	if code := h.do(big).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != errOffsetMetadataTooLarge {
		t.Fatalf("commit with large metadata: %d", code)
	}
}

func TestOffsetFetchForms(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("g1", "", -1, map[int32]int64{0: 1, 3: 4})
	h.commit("g2", "", -1, map[int32]int64{5: 6})
	// v7 all partitions (null topics).
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = "g1"
	resp := h.do(r).(*kmsg.OffsetFetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 || resp.Topics[0].Partitions[1].Offset != 4 ||
		*resp.Topics[0].Partitions[1].Metadata != "md-3" || resp.Topics[0].Partitions[1].LeaderEpoch != 7 {
		t.Fatalf("fetch all: %+v", resp.Topics)
	}
	// v8 multi-group: g1 all, g2 one partition, g3 unknown.
	r = kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	r.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g1"},
		{Group: "g2", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: testTopic, Partitions: []int32{5, 0}}}},
		{Group: "g3", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: testTopic, Partitions: []int32{0}}}},
	}
	resp = h.do(r).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 3 {
		t.Fatalf("groups: %+v", resp.Groups)
	}
	if g := resp.Groups[0]; len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 2 {
		t.Fatalf("g1: %+v", g)
	}
	if g := resp.Groups[1]; g.Topics[0].Partitions[0].Offset != 6 || g.Topics[0].Partitions[1].Offset != -1 {
		t.Fatalf("g2: %+v", g)
	}
	if g := resp.Groups[2]; g.ErrorCode != 0 || g.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("g3: %+v", g)
	}
	// v1 (librdkafka's gate version).
	r = kmsg.NewPtrOffsetFetchRequest()
	r.Version = 1
	r.Group = "g1"
	r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: testTopic, Partitions: []int32{3}}}
	if resp := h.do(r).(*kmsg.OffsetFetchResponse); resp.Topics[0].Partitions[0].Offset != 4 {
		t.Fatalf("v1 fetch: %+v", resp.Topics)
	}
}

func TestDescribeListDelete(t *testing.T) {
	h := newHarness(t, nil)
	rs := h.stableGroup("active", 2)
	h.commit("active", rs[0].MemberID, 1, map[int32]int64{0: 3})
	h.commit("offsets-only", "", -1, map[int32]int64{1: 2})

	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 5
	d.Groups = []string{"active", "offsets-only", "missing"}
	dr := h.do(d).(*kmsg.DescribeGroupsResponse)
	if g := dr.Groups[0]; g.State != "Stable" || g.Protocol != "range" || g.ProtocolType != "consumer" || len(g.Members) != 2 ||
		g.Members[0].ClientID != "test-client" || g.Members[0].ClientHost != "127.0.0.1" || len(g.Members[0].MemberAssignment) == 0 {
		t.Fatalf("describe active: %+v", g)
	}
	if dr.Groups[1].State != "Empty" || dr.Groups[2].State != "Dead" {
		t.Fatalf("describe: %s %s", dr.Groups[1].State, dr.Groups[2].State)
	}

	l := kmsg.NewPtrListGroupsRequest()
	l.Version = 4
	lr := h.do(l).(*kmsg.ListGroupsResponse)
	var names []string
	for _, g := range lr.Groups {
		names = append(names, g.Group+"/"+g.GroupState)
	}
	if !slices.Equal(names, []string{"active/Stable", "offsets-only/Empty"}) {
		t.Fatalf("list: %v", names)
	}
	l.StatesFilter = []string{"Empty"}
	if lr := h.do(l).(*kmsg.ListGroupsResponse); len(lr.Groups) != 1 || lr.Groups[0].Group != "offsets-only" {
		t.Fatalf("list Empty: %+v", lr.Groups)
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version = 2
	del.Groups = []string{"active", "offsets-only", "missing"}
	delr := h.do(del).(*kmsg.DeleteGroupsResponse)
	if c := []int16{delr.Groups[0].ErrorCode, delr.Groups[1].ErrorCode, delr.Groups[2].ErrorCode}; !slices.Equal(c, []int16{errNonEmptyGroup, 0, errGroupIDNotFound}) {
		t.Fatalf("delete: %v", c)
	}
	if got := h.fetch("offsets-only", 1); got[1] != -1 {
		t.Fatalf("offsets after delete: %v", got)
	}
	// Once its members have left, the active group can be deleted with its offsets.
	for _, r := range rs {
		lv := kmsg.NewPtrLeaveGroupRequest()
		lv.Group, lv.MemberID = "active", r.MemberID
		h.do(lv)
	}
	if got := h.state("active"); got != stateEmpty {
		t.Fatalf("state after leaves: %v", got)
	}
	del.Groups = []string{"active"}
	if delr := h.do(del).(*kmsg.DeleteGroupsResponse); delr.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete emptied group: %d", delr.Groups[0].ErrorCode)
	}
	if got := h.fetch("active", 0); got[0] != -1 {
		t.Fatalf("offsets after delete: %v", got)
	}
	h.reopen()
	if got := h.fetch("active", 0); got[0] != -1 {
		t.Fatalf("offsets after delete and reopen: %v", got)
	}
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("g", "", -1, map[int32]int64{0: 1, 1: 2})
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = "g"
	r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: testTopic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	if resp := h.do(r).(*kmsg.OffsetDeleteResponse); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if got := h.fetch("g", 0, 1); got[0] != -1 || got[1] != 2 {
		t.Fatalf("after offset delete: %v", got)
	}
	r.Group = "missing"
	if resp := h.do(r).(*kmsg.OffsetDeleteResponse); resp.ErrorCode != errGroupIDNotFound {
		t.Fatalf("offset delete of missing group: %d", resp.ErrorCode)
	}
	// A subscribed topic's offsets cannot be deleted.
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{testTopic}}
	jr := joinReq(3, "sub", "")
	jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	ch := h.async(jr)
	h.waitJoining("sub", 1)
	h.clk.Advance(3 * time.Second)
	wait[*kmsg.JoinGroupResponse](t, ch)
	r.Group = "sub"
	if resp := h.do(r).(*kmsg.OffsetDeleteResponse); resp.Topics[0].Partitions[0].ErrorCode != errGroupSubscribedToTopic {
		t.Fatalf("offset delete of subscribed topic: %+v", resp)
	}
}

func TestExpireOffsets(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OffsetsRetention = time.Hour })
	h.commit("old", "", -1, map[int32]int64{0: 1})
	rs := h.stableGroup("busy", 1, withTimeouts(30*time.Minute, 30*time.Minute))
	h.commit("busy", rs[0].MemberID, 1, map[int32]int64{0: 2})
	for _, step := range []time.Duration{20 * time.Minute, 10 * time.Minute, 20 * time.Minute, 11 * time.Minute} {
		h.clk.Advance(step)
		if code := h.heartbeat("busy", rs[0].MemberID, 1); code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
		if step == 10*time.Minute { // 30 minutes in
			h.commit("young", "", -1, map[int32]int64{0: 3})
		}
	}
	h.c.ExpireOffsets()
	if got := h.fetch("old", 0); got[0] != -1 {
		t.Fatalf("old offsets not expired: %v", got)
	}
	if got := h.fetch("young", 0); got[0] != 3 {
		t.Fatalf("young offsets expired: %v", got)
	}
	if got := h.fetch("busy", 0); got[0] != 2 {
		t.Fatalf("offsets of a group with members expired: %v", got)
	}
	h.reopen()
	if got := h.fetch("old", 0); got[0] != -1 {
		t.Fatalf("expired offsets back after reopen: %v", got)
	}
	if got := h.fetch("young", 0); got[0] != 3 {
		t.Fatalf("young offsets lost after reopen: %v", got)
	}
}

func TestCloseAnswersBlockedRequests(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.async(joinReq(3, "g", ""))
	h.waitJoining("g", 1)
	h.c.Close()
	if r := wait[*kmsg.JoinGroupResponse](t, ch); r.ErrorCode != errCoordinatorNotAvailable {
		t.Fatalf("blocked join after Close: %d", r.ErrorCode)
	}
	if code := h.heartbeat("g", "x", 1); code != errCoordinatorNotAvailable {
		t.Fatalf("heartbeat after Close: %d", code)
	}
}

func TestNotAvailableBeforeLoaded(t *testing.T) {
	h := newHarness(t, nil)
	h.c.ready.Store(false)
	if r := h.do(joinReq(4, "g", "")).(*kmsg.JoinGroupResponse); r.ErrorCode != errCoordinatorNotAvailable {
		t.Fatalf("join before loaded: %d", r.ErrorCode)
	}
	if code := h.commit("g", "", -1, map[int32]int64{0: 1}); code != errCoordinatorNotAvailable {
		t.Fatalf("commit before loaded: %d", code)
	}
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 5
	r.Group = "g"
	if resp := h.do(r).(*kmsg.OffsetFetchResponse); resp.ErrorCode != errCoordinatorNotAvailable {
		t.Fatalf("fetch before loaded: %d", resp.ErrorCode)
	}
}

func TestCancelledJoinReturns(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.handle(ctx, joinReq(3, "g", ""))
		done <- err
	}()
	h.waitJoining("g", 1)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled join returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled join did not return")
	}
}

func TestSyncTimeoutRemovesSilentLeader(t *testing.T) {
	h := newHarness(t, nil)
	var chs []<-chan result
	for i := 0; i < 2; i++ {
		chs = append(chs, h.async(joinReq(3, "g", "")))
		h.waitJoining("g", i+1)
	}
	h.clk.Advance(6 * time.Second)
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
	h.waitSyncing("g", 1)
	// The leader heartbeats but never sends its assignment.
	for i := 0; i < 5; i++ {
		h.clk.Advance(5 * time.Second)
		if code := h.heartbeat("g", leader.MemberID, 1); code != 0 {
			t.Fatalf("leader heartbeat: %d", code)
		}
		notDone(t, sync)
	}
	h.clk.Advance(5 * time.Second) // rebalance timeout (30 s) since the join completed
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
	h := newHarness(t, nil)
	var chs []<-chan result
	for i, inst := range []string{"host-a", "host-b"} {
		chs = append(chs, h.async(joinReq(5, "g", "", withInstance(inst))))
		h.waitJoining("g", i+1)
	}
	h.clk.Advance(6 * time.Second)
	var rs []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		rs = append(rs, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	h.syncAll("g", rs)
	// A dynamic member joins: rebalance. host-a rejoins normally; host-b restarts meanwhile
	// and rejoins without its member id: it takes its place in this rebalance.
	chNew := h.async(joinReq(3, "g", ""))
	h.waitJoining("g", 1)
	chA := h.async(joinReq(5, "g", rs[0].MemberID, withInstance("host-a")))
	h.waitJoining("g", 2)
	chB := h.async(joinReq(5, "g", "", withInstance("host-b")))
	var got []*kmsg.JoinGroupResponse
	for _, ch := range []<-chan result{chNew, chA, chB} {
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
	h.waitJoining("g", 1)
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

func TestGroupSurvivesRestart(t *testing.T) {
	h := newHarness(t, nil)
	var chs []<-chan result
	for i, inst := range []string{"", "host-b"} {
		opts := []joinOpt{}
		if inst != "" {
			opts = append(opts, withInstance(inst))
		}
		chs = append(chs, h.async(joinReq(5, "g", "", opts...)))
		if i == 0 {
			// v5 dynamic member: MEMBER_ID_REQUIRED first.
			r := wait[*kmsg.JoinGroupResponse](t, chs[0])
			chs[0] = h.async(joinReq(5, "g", r.MemberID))
		}
		h.waitJoining("g", i+1)
	}
	h.clk.Advance(6 * time.Second)
	var rs []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		rs = append(rs, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	h.syncAll("g", rs)
	h.commit("g", rs[0].MemberID, 1, map[int32]int64{0: 9})

	h.reopen()
	if got := h.state("g"); got != stateStable {
		t.Fatalf("state after restart: %v, want Stable", got)
	}
	for _, r := range rs {
		if code := h.heartbeat("g", r.MemberID, 1); code != 0 {
			t.Fatalf("heartbeat of %s after restart: %d", r.MemberID, code)
		}
		sr := h.do(syncReq(5, "g", r.MemberID, 1, nil)).(*kmsg.SyncGroupResponse)
		if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assign-"+r.MemberID {
			t.Fatalf("sync after restart: %+v", sr)
		}
	}
	if code := h.commit("g", rs[1].MemberID, 1, map[int32]int64{0: 10}); code != 0 {
		t.Fatalf("commit after restart: %d", code)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"g"}
	if g := h.do(d).(*kmsg.DescribeGroupsResponse).Groups[0]; g.State != "Stable" || len(g.Members) != 2 || g.Protocol != "range" {
		t.Fatalf("describe after restart: %+v", g)
	}
	// The static member restarts too: it gets its assignment back without a rebalance.
	r := h.do(joinReq(5, "g", "", withInstance("host-b"))).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 || r.Generation != 1 || h.state("g") != stateStable {
		t.Fatalf("static rejoin after restart: %+v", r)
	}
	// Sessions restart at load: members that stay silent expire.
	h.clk.Advance(testSession + time.Millisecond)
	if got := h.state("g"); got != stateEmpty {
		t.Fatalf("state after every session expired: %v, want Empty", got)
	}
	h.reopen()
	if got := h.state("g"); got != stateEmpty {
		t.Fatalf("state after restart of an empty group: %v", got)
	}
	if got := h.fetch("g", 0); got[0] != 10 {
		t.Fatalf("offset after restarts: %v", got)
	}
	// Deleting the group removes its metadata too.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	if dr := h.do(del).(*kmsg.DeleteGroupsResponse); dr.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete: %d", dr.Groups[0].ErrorCode)
	}
	h.reopen()
	if got := h.state("g"); got != stateDead {
		t.Fatalf("state after delete and restart: %v", got)
	}
}
