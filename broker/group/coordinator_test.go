package group

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSessionTimeoutBounds(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MinSessionTimeout = 6 * time.Second })
	r := h.do(joinReq(5, "g", "", withTimeouts(time.Second, testRebalance))).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != errInvalidSessionTimeout {
		t.Fatalf("error %d, want INVALID_SESSION_TIMEOUT", r.ErrorCode)
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
	h.joining("sub", 1)
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
	h.joining("g", 1)
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
	// Handle is begin then wait: begin registers the join, wait blocks until ctx ends.
	p, err := h.c.begin(testClient, roundTrip(t, joinReq(3, "g", "")))
	if err != nil {
		t.Fatal(err)
	}
	h.joining("g", 1)
	done := make(chan error, 1)
	go func() {
		_, err := p.wait(ctx, h.c.done)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled join returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled join did not return")
	}
	// The abandoned request is forgotten: its answer will go nowhere.
	cl := h.c.lookup("g")
	cl.mu.Lock()
	n := len(cl.waiters)
	cl.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests still waiting after the join was cancelled", n)
	}
}

func TestGroupSurvivesRestart(t *testing.T) {
	h := newHarness(t, nil)
	var chs []*call
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
		h.joining("g", i+1)
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

// TestMetadataWritesInStepOrder checks the coordinator's rule for a group's metadata
// records, which it writes after releasing the group's mutex: a record asked for by an
// earlier Step is never written after a later one, and none after the group's tombstone.
func TestMetadataWritesInStepOrder(t *testing.T) {
	h := newHarness(t, nil)
	cl := h.c.getOrCreate("g")
	value := func(gen int32) []byte {
		v := kmsg.NewGroupMetadataValue()
		v.Version, v.ProtocolType, v.Generation = 3, "consumer", gen
		return v.AppendTo(nil)
	}
	stored := func() int32 {
		t.Helper()
		raw, ok := h.c.offsets.groupMetadata()["g"]
		if !ok {
			return -1
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(raw); err != nil {
			t.Fatal(err)
		}
		return v.Generation
	}
	// Two Steps asked for records 1 and 2; the second's write wins the race.
	h.c.finish(cl, effects{record: value(2), version: 2})
	h.c.finish(cl, effects{record: value(1), version: 1})
	if got := stored(); got != 2 {
		t.Fatalf("stored generation %d, want 2 (the later Step's)", got)
	}
	if err := h.c.deleteMetadata(cl); err != nil {
		t.Fatal(err)
	}
	h.c.finish(cl, effects{record: value(3), version: 3})
	if got := stored(); got != -1 {
		t.Fatalf("stored generation %d after the tombstone, want none", got)
	}
}
