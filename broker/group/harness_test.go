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

var testClient = server.Client{ID: "test-client", Host: "127.0.0.1"}

func (h *harness) handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	resp, err := h.c.Handle(ctx, testClient, roundTrip(h.t, req))
	if err != nil {
		return nil, err
	}
	return checkResponse(h.t, req, resp), nil
}

// checkResponse fails the test unless resp answers req at its version and encodes and
// decodes at that version; it returns the decoded copy.
func checkResponse(t testing.TB, req kmsg.Request, resp kmsg.Response) kmsg.Response {
	t.Helper()
	if resp.GetVersion() != req.GetVersion() || resp.Key() != req.Key() {
		t.Fatalf("response %s v%d to %s v%d", kmsg.NameForKey(resp.Key()), resp.GetVersion(), kmsg.NameForKey(req.Key()), req.GetVersion())
	}
	back := req.ResponseKind()
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("decode response %s v%d: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	return back
}

// driver runs requests against a coordinator (harness) or a bare group state machine
// (machine), so that the helpers below serve both.
type driver interface {
	tb() testing.TB
	do(req kmsg.Request) kmsg.Response
	async(req kmsg.Request) *call
	advance(d time.Duration)
	initialDelay() time.Duration
	// joining and syncing fail the test unless exactly n members of the group are blocked
	// in JoinGroup (SyncGroup).
	joining(id string, n int)
	syncing(id string, n int)
}

// countWaiting counts the members blocked in JoinGroup and in SyncGroup.
func countWaiting(g *group) (joins, syncs int) {
	for _, m := range g.members {
		if m.join != 0 {
			joins++
		}
		if m.sync != 0 {
			syncs++
		}
	}
	return joins, syncs
}

func expectWaiting(t testing.TB, id string, g *group, joins, syncs int) {
	t.Helper()
	j, s := 0, 0
	if g != nil {
		j, s = countWaiting(g)
	}
	if joins >= 0 && j != joins {
		t.Fatalf("group %s: %d members blocked in JoinGroup, want %d", id, j, joins)
	}
	if syncs >= 0 && s != syncs {
		t.Fatalf("group %s: %d members blocked in SyncGroup, want %d", id, s, syncs)
	}
}

// call is a request started by async. Its answer, if the request has one by now, is
// already there: answers are delivered by the Step that produces them, in the goroutine
// that caused it (a request, or a clock advance), so checking a call never waits.
type call struct {
	t    testing.TB
	poll func() (kmsg.Response, bool)
	resp kmsg.Response
	done bool
}

func (c *call) try() bool {
	if !c.done {
		c.resp, c.done = c.poll()
	}
	return c.done
}

// wait returns the call's answer, failing the test if it has none.
func wait[T kmsg.Response](t testing.TB, c *call) T {
	t.Helper()
	if !c.try() {
		t.Fatal("request did not complete")
	}
	return c.resp.(T)
}

// notDone fails the test if the call has its answer.
func notDone(t testing.TB, c *call) {
	t.Helper()
	if c.try() {
		t.Fatalf("request completed early: %+v", c.resp)
	}
}

func (h *harness) do(req kmsg.Request) kmsg.Response {
	h.t.Helper()
	resp, err := h.handle(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// async starts req: when it returns, the request has reached its group (a JoinGroup or
// SyncGroup that waits is registered), so no test needs to poll for it.
func (h *harness) async(req kmsg.Request) *call {
	h.t.Helper()
	p, err := h.c.begin(testClient, roundTrip(h.t, req))
	if err != nil {
		h.t.Fatal(err)
	}
	return &call{t: h.t, poll: func() (kmsg.Response, bool) {
		resp, ok := p.poll()
		if !ok {
			return nil, false
		}
		return checkResponse(h.t, req, resp), true
	}}
}

func (h *harness) tb() testing.TB              { return h.t }
func (h *harness) advance(d time.Duration)     { h.clk.Advance(d) }
func (h *harness) initialDelay() time.Duration { return h.c.cfg.InitialRebalanceDelay }
func (h *harness) heartbeat(group, member string, gen int32) int16 {
	return heartbeat(h, group, member, gen)
}
func (h *harness) commit(group, member string, gen int32, offsets map[int32]int64) int16 {
	h.t.Helper()
	return commit(h, group, member, gen, offsets)
}
func (h *harness) stableGroup(id string, n int, opts ...joinOpt) []*kmsg.JoinGroupResponse {
	h.t.Helper()
	return stableGroup(h, id, n, opts...)
}
func (h *harness) syncAll(id string, resps []*kmsg.JoinGroupResponse) {
	h.t.Helper()
	syncAll(h, id, resps)
}

func (h *harness) joining(id string, n int) {
	h.t.Helper()
	h.inspect(id, func(g *group) { expectWaiting(h.t, id, g, n, -1) })
}

func (h *harness) syncing(id string, n int) {
	h.t.Helper()
	h.inspect(id, func(g *group) { expectWaiting(h.t, id, g, -1, n) })
}

// inspect calls f with the group (nil if absent) under its cell's mutex.
func (h *harness) inspect(id string, f func(*group)) {
	cl := h.c.lookup(id)
	if cl == nil {
		f(nil)
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	f(cl.g)
}

func (h *harness) state(id string) state {
	cl := h.c.lookup(id)
	if cl == nil {
		return stateDead
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.g.state
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

func heartbeat(d driver, group, member string, gen int32) int16 {
	return d.do(heartbeatReq(4, group, member, gen)).(*kmsg.HeartbeatResponse).ErrorCode
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
func commit(d driver, group, member string, gen int32, offsets map[int32]int64) int16 {
	t := d.tb()
	t.Helper()
	resp := d.do(commitReq(8, group, member, gen, offsets)).(*kmsg.OffsetCommitResponse)
	code := int16(-2)
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if code != -2 && p.ErrorCode != code {
				t.Fatalf("mixed commit errors: %+v", resp.Topics)
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
func stableGroup(d driver, id string, n int, opts ...joinOpt) []*kmsg.JoinGroupResponse {
	t := d.tb()
	t.Helper()
	var chs []*call
	for i := 0; i < n; i++ {
		chs = append(chs, d.async(joinReq(3, id, "", opts...)))
		d.joining(id, i+1)
	}
	// Members that joined during the initial delay extend it once (Kafka's behaviour).
	d.advance(d.initialDelay())
	if n > 1 {
		d.advance(d.initialDelay())
	}
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		resps = append(resps, wait[*kmsg.JoinGroupResponse](t, ch))
	}
	syncAll(d, id, resps)
	return resps
}

// syncAll syncs every member of a completed join: followers first, then the leader with
// assignment "assign-<member id>" for each member.
func syncAll(d driver, id string, resps []*kmsg.JoinGroupResponse) {
	t := d.tb()
	t.Helper()
	var leader *kmsg.JoinGroupResponse
	var chs []*call
	for _, r := range resps {
		if r.ErrorCode != 0 {
			t.Fatalf("join error %d", r.ErrorCode)
		}
		if r.MemberID == r.LeaderID {
			leader = r
			continue
		}
		chs = append(chs, d.async(syncReq(3, id, r.MemberID, r.Generation, nil)))
	}
	if leader == nil {
		t.Fatal("no leader among the join responses")
	}
	d.syncing(id, len(chs))
	assign := map[string]string{}
	for _, m := range leader.Members {
		assign[m.MemberID] = "assign-" + m.MemberID
	}
	lr := d.do(syncReq(3, id, leader.MemberID, leader.Generation, assign)).(*kmsg.SyncGroupResponse)
	if lr.ErrorCode != 0 || string(lr.MemberAssignment) != "assign-"+leader.MemberID {
		t.Fatalf("leader sync: error %d assignment %q", lr.ErrorCode, lr.MemberAssignment)
	}
	for _, ch := range chs {
		sr := wait[*kmsg.SyncGroupResponse](t, ch)
		if sr.ErrorCode != 0 || len(sr.MemberAssignment) == 0 {
			t.Fatalf("follower sync: error %d assignment %q", sr.ErrorCode, sr.MemberAssignment)
		}
	}
}
