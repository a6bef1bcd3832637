package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestVersionsCoverClients(t *testing.T) {
	v := (&Coordinator{}).Versions()
	for key, need := range map[int16][2]int16{
		11: {0, 8}, // JoinGroup: librdkafka 0, sarama up to 8
		14: {0, 5}, // SyncGroup
		12: {0, 4}, // Heartbeat
		13: {0, 5}, // LeaveGroup
		8:  {1, 8}, // OffsetCommit: librdkafka 1..2, sarama 8
		9:  {1, 8}, // OffsetFetch: librdkafka 1, sarama 8
	} {
		got, ok := v[key]
		if !ok || got[0] > need[0] || got[1] < need[1] {
			t.Errorf("%s: advertised %v, clients need %v", kmsg.NameForKey(key), got, need)
		}
		if max := kmsg.RequestForKey(key).MaxVersion(); got[1] > max {
			t.Errorf("%s: advertised max %d beyond kmsg's %d", kmsg.NameForKey(key), got[1], max)
		}
	}
}

// TestEveryVersion runs a whole group life cycle at every advertised version of each API.
func TestEveryVersion(t *testing.T) {
	h := newHarness(t, nil)
	vers := h.c.Versions()
	at := func(key int16, v int16) int16 { return min(v, vers[key][1]) }
	for v := int16(0); v <= vers[11][1]; v++ {
		group := "gv" + string(rune('0'+v))
		jr := joinReq(v, group, "", withTimeouts(testSession, testSession))
		if v >= 4 {
			r := h.do(jr).(*kmsg.JoinGroupResponse)
			if r.ErrorCode != errMemberIDRequired {
				t.Fatalf("v%d: first join: %d", v, r.ErrorCode)
			}
			jr.MemberID = r.MemberID
		}
		ch := h.async(jr)
		h.joining(group, 1)
		h.clk.Advance(3 * time.Second)
		r := wait[*kmsg.JoinGroupResponse](t, ch)
		if r.ErrorCode != 0 || r.Generation != 1 || r.Protocol == nil || *r.Protocol != "range" || r.LeaderID != r.MemberID || len(r.Members) != 1 {
			t.Fatalf("v%d: join: %+v", v, r)
		}
		if v >= 7 && (r.ProtocolType == nil || *r.ProtocolType != "consumer") {
			t.Fatalf("v%d: protocol type %v", v, r.ProtocolType)
		}
		id := r.MemberID
		sr := h.do(syncReq(at(14, v), group, id, 1, map[string]string{id: "a"})).(*kmsg.SyncGroupResponse)
		if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "a" {
			t.Fatalf("v%d: sync: %+v", v, sr)
		}
		if code := h.do(heartbeatReq(at(12, v), group, id, 1)).(*kmsg.HeartbeatResponse).ErrorCode; code != 0 {
			t.Fatalf("v%d: heartbeat: %d", v, code)
		}
		cv := at(8, v)
		if cv == 0 {
			// v0 carries no generation or member: refused while the group has members.
			cr := h.do(commitReq(0, group, id, 1, map[int32]int64{0: 1})).(*kmsg.OffsetCommitResponse)
			if code := cr.Topics[0].Partitions[0].ErrorCode; code != errUnknownMemberID {
				t.Fatalf("v0 commit to a group with members: error %d, want UNKNOWN_MEMBER_ID", code)
			}
			cv = 1
		}
		cr := h.do(commitReq(cv, group, id, 1, map[int32]int64{0: int64(v) + 100})).(*kmsg.OffsetCommitResponse)
		if code := cr.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("v%d: commit v%d: %d", v, cv, code)
		}
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.Version = at(9, v)
		if fr.Version >= 8 {
			fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: testTopic, Partitions: []int32{0}}}}}
			if got := h.do(fr).(*kmsg.OffsetFetchResponse).Groups[0].Topics[0].Partitions[0].Offset; got != int64(v)+100 {
				t.Fatalf("v%d: fetch: %d", v, got)
			}
		} else {
			fr.Group = group
			fr.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: testTopic, Partitions: []int32{0}}}
			if got := h.do(fr).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0].Offset; got != int64(v)+100 {
				t.Fatalf("v%d: fetch: %d", v, got)
			}
		}
		dr := kmsg.NewPtrDescribeGroupsRequest()
		dr.Version = at(15, v)
		dr.Groups = []string{group}
		if d := h.do(dr).(*kmsg.DescribeGroupsResponse); d.Groups[0].State != "Stable" || len(d.Groups[0].Members) != 1 {
			t.Fatalf("v%d: describe: %+v", v, d.Groups[0])
		}
		lr := kmsg.NewPtrListGroupsRequest()
		lr.Version = at(16, v)
		if l := h.do(lr).(*kmsg.ListGroupsResponse); l.ErrorCode != 0 || len(l.Groups) == 0 {
			t.Fatalf("v%d: list: %+v", v, l)
		}
		lv := kmsg.NewPtrLeaveGroupRequest()
		lv.Version = at(13, v)
		lv.Group = group
		if lv.Version >= 3 {
			lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id}}
			if l := h.do(lv).(*kmsg.LeaveGroupResponse); l.ErrorCode != 0 || l.Members[0].ErrorCode != 0 {
				t.Fatalf("v%d: leave: %+v", v, l)
			}
		} else {
			lv.MemberID = id
			if l := h.do(lv).(*kmsg.LeaveGroupResponse); l.ErrorCode != 0 {
				t.Fatalf("v%d: leave: %+v", v, l)
			}
		}
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Version = at(42, v)
		del.Groups = []string{group}
		if d := h.do(del).(*kmsg.DeleteGroupsResponse); d.Groups[0].ErrorCode != 0 {
			t.Fatalf("v%d: delete: %+v", v, d.Groups[0])
		}
	}
}
