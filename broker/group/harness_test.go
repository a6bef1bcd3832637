package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/broker/storage"
)

const testTopic = "events"

// harness is a coordinator on a real store in a temporary directory, driven by a fake clock.
type harness struct {
	t     testing.TB
	dir   string
	clk   *fakeClock
	cfg   Config
	store *storage.Store
	c     *Coordinator
}

func newHarness(t testing.TB, mut func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clk: newFakeClock()}
	h.cfg = Config{
		Clock:                 h.clk,
		OffsetsPartitions:     4,
		InitialRebalanceDelay: 3 * time.Second,
		MinSessionTimeout:     time.Millisecond,
	}
	if mut != nil {
		mut(&h.cfg)
	}
	h.open()
	if h.store.Topic(testTopic) == nil {
		if _, err := h.store.CreateTopic(testTopic, 6, storage.DefaultTopicConfig()); err != nil {
			t.Fatalf("create topic: %v", err)
		}
	}
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.t.Helper()
	st, err := storage.Open(storage.Options{Dir: h.dir})
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.store = st
	cfg := h.cfg
	cfg.Store = st
	c, err := New(cfg)
	if err != nil {
		st.Close()
		h.t.Fatalf("new coordinator: %v", err)
	}
	if err := c.LoadErr(); err != nil {
		h.t.Fatalf("load: %v", err)
	}
	h.c = c
}

func (h *harness) close() {
	if h.c == nil {
		return
	}
	h.c.Close()
	h.store.Close()
	h.c, h.store = nil, nil
}

// reopen closes the coordinator and the store and opens both again on the same directory.
func (h *harness) reopen() {
	h.t.Helper()
	h.close()
	h.open()
}

// roundTrip encodes and decodes req at its version, as the server would receive it.
func roundTrip(t testing.TB, req kmsg.Request) kmsg.Request {
	t.Helper()
	fresh := kmsg.RequestForKey(req.Key())
	fresh.SetVersion(req.GetVersion())
	if err := fresh.ReadFrom(req.AppendTo(nil)); err != nil {
		t.Fatalf("decode %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return fresh
}

func (h *harness) handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	resp, err := h.c.Handle(ctx, server.Client{ID: "test-client", Host: "127.0.0.1"}, roundTrip(h.t, req))
	if err != nil {
		return nil, err
	}
	if resp.GetVersion() != req.GetVersion() || resp.Key() != req.Key() {
		return nil, fmt.Errorf("response %s v%d to %s v%d", kmsg.NameForKey(resp.Key()), resp.GetVersion(), kmsg.NameForKey(req.Key()), req.GetVersion())
	}
	// The response must encode and decode at its version.
	back := req.ResponseKind()
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		return nil, fmt.Errorf("decode response %s v%d: %w", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	return back, nil
}

func (h *harness) do(req kmsg.Request) kmsg.Response {
	h.t.Helper()
	resp, err := h.handle(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

type result struct {
	resp kmsg.Response
	err  error
}

// async runs req in its own goroutine.
func (h *harness) async(req kmsg.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := h.handle(context.Background(), req)
		ch <- result{resp, err}
	}()
	return ch
}

func wait[T kmsg.Response](t testing.TB, ch <-chan result) T {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.resp.(T)
	case <-time.After(10 * time.Second):
		t.Fatal("request did not complete")
	}
	panic("unreachable")
}

func notDone(t testing.TB, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("request completed early: %+v", r)
	default:
	}
}

// waitFor polls cond on the group until it holds or a deadline passes.
func (h *harness) waitFor(id, what string, cond func(g *group) bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if g := h.c.lookup(id); g != nil {
			g.mu.Lock()
			ok := cond(g)
			g.mu.Unlock()
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("group %s: timed out waiting for %s", id, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitJoining waits until n members of the group are blocked in JoinGroup.
func (h *harness) waitJoining(id string, n int) {
	h.t.Helper()
	h.waitFor(id, fmt.Sprintf("%d joining members", n), func(g *group) bool {
		c := 0
		for _, m := range g.members {
			if m.join != nil {
				c++
			}
		}
		return c == n
	})
}

// waitSyncing waits until n members of the group are blocked in SyncGroup.
func (h *harness) waitSyncing(id string, n int) {
	h.t.Helper()
	h.waitFor(id, fmt.Sprintf("%d syncing members", n), func(g *group) bool {
		c := 0
		for _, m := range g.members {
			if m.sync != nil {
				c++
			}
		}
		return c == n
	})
}

func (h *harness) state(id string) state {
	g := h.c.lookup(id)
	if g == nil {
		return stateDead
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

type joinOpt func(*kmsg.JoinGroupRequest)

func withInstance(id string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.InstanceID = &id }
}

func withProtocols(names ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.Protocols = nil
		for _, n := range names {
			r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte("meta-" + n)})
		}
	}
}

func withTimeouts(session, rebalance time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.SessionTimeoutMillis = int32(session / time.Millisecond)
		r.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	}
}

const (
	testSession   = 10 * time.Second
	testRebalance = 30 * time.Second
)

func joinReq(version int16, group, member string, opts ...joinOpt) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.ProtocolType = "consumer"
	withTimeouts(testSession, testRebalance)(r)
	withProtocols("range")(r)
	for _, o := range opts {
		o(r)
	}
	return r
}

func syncReq(version int16, group, member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.Generation = gen
	for id, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return r
}

func heartbeatReq(version int16, group, member string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.Generation = gen
	return r
}

func (h *harness) heartbeat(group, member string, gen int32) int16 {
	return h.do(heartbeatReq(4, group, member, gen)).(*kmsg.HeartbeatResponse).ErrorCode
}

func commitReq(version int16, group, member string, gen int32, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.Generation = gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = testTopic
	for p, o := range offsets {
		md := fmt.Sprintf("md-%d", p)
		t.Partitions = append(t.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, Offset: o, Timestamp: -1, LeaderEpoch: 7, Metadata: &md})
	}
	r.Topics = []kmsg.OffsetCommitRequestTopic{t}
	return r
}

// commit commits and returns the single error code of all partitions (failing the test if
// they differ).
func (h *harness) commit(group, member string, gen int32, offsets map[int32]int64) int16 {
	h.t.Helper()
	resp := h.do(commitReq(8, group, member, gen, offsets)).(*kmsg.OffsetCommitResponse)
	code := int16(-2)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if code != -2 && p.ErrorCode != code {
				h.t.Fatalf("mixed commit errors: %+v", resp.Topics)
			}
			code = p.ErrorCode
		}
	}
	return code
}

// fetch returns the committed offsets of testTopic (-1 for none) for the given partitions.
func (h *harness) fetch(group string, partitions ...int32) map[int32]int64 {
	h.t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: testTopic, Partitions: partitions}}
	resp := h.do(r).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("offset fetch: error %d", resp.ErrorCode)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				h.t.Fatalf("offset fetch %s/%d: error %d", t.Topic, p.Partition, p.ErrorCode)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out
}

// stableGroup brings n members (JoinGroup v3, so without the MEMBER_ID_REQUIRED round) into
// a stable group through the initial delay, with assignment "assign-<member id>" each. It
// returns the join responses in the order of the requests.
func (h *harness) stableGroup(id string, n int, opts ...joinOpt) []*kmsg.JoinGroupResponse {
	h.t.Helper()
	var chs []<-chan result
	for i := 0; i < n; i++ {
		chs = append(chs, h.async(joinReq(3, id, "", opts...)))
		h.waitJoining(id, i+1)
	}
	// Members that joined during the initial delay extend it once (Kafka's behaviour).
	h.clk.Advance(h.c.cfg.InitialRebalanceDelay)
	if n > 1 {
		h.clk.Advance(h.c.cfg.InitialRebalanceDelay)
	}
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		resps = append(resps, wait[*kmsg.JoinGroupResponse](h.t, ch))
	}
	h.syncAll(id, resps)
	return resps
}

// syncAll syncs every member of a completed join: followers first, then the leader with
// assignment "assign-<member id>" for each member.
func (h *harness) syncAll(id string, resps []*kmsg.JoinGroupResponse) {
	h.t.Helper()
	var leader *kmsg.JoinGroupResponse
	var chs []<-chan result
	for _, r := range resps {
		if r.ErrorCode != 0 {
			h.t.Fatalf("join error %d", r.ErrorCode)
		}
		if r.MemberID == r.LeaderID {
			leader = r
			continue
		}
		chs = append(chs, h.async(syncReq(3, id, r.MemberID, r.Generation, nil)))
	}
	if leader == nil {
		h.t.Fatal("no leader among the join responses")
	}
	h.waitSyncing(id, len(chs))
	assign := map[string]string{}
	for _, m := range leader.Members {
		assign[m.MemberID] = "assign-" + m.MemberID
	}
	lr := h.do(syncReq(3, id, leader.MemberID, leader.Generation, assign)).(*kmsg.SyncGroupResponse)
	if lr.ErrorCode != 0 || string(lr.MemberAssignment) != "assign-"+leader.MemberID {
		h.t.Fatalf("leader sync: error %d assignment %q", lr.ErrorCode, lr.MemberAssignment)
	}
	for _, ch := range chs {
		sr := wait[*kmsg.SyncGroupResponse](h.t, ch)
		if sr.ErrorCode != 0 || len(sr.MemberAssignment) == 0 {
			h.t.Fatalf("follower sync: error %d assignment %q", sr.ErrorCode, sr.MemberAssignment)
		}
	}
}
