package group

import (
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// machine drives bare group state machines, without a coordinator, store, clock or
// goroutine: requests are decoded and answers encoded by the coordinator's own functions,
// each becomes one Step, and time moves only by advance, which steps every timer that falls
// due, in time order. Everything it does is deterministic.
type machine struct {
	t       testing.TB
	cfg     Config
	now     time.Time
	groups  map[string]*group
	timers  map[machineTimer]machineDue
	armed   uint64 // timers armed so far: orders timers due at the same time
	answers map[waiterID]answer
	waiters waiterID
	records map[string][][]byte // metadata records each group asked to store
}

type machineTimer struct {
	group string
	key   timerKey
}

type machineDue struct {
	at  time.Time
	seq uint64
}

func newMachine(t testing.TB, mut func(*Config)) *machine {
	cfg := Config{Store: nil, InitialRebalanceDelay: 3 * time.Second, MinSessionTimeout: time.Millisecond}
	if mut != nil {
		mut(&cfg)
	}
	cfg.setDefaults()
	return &machine{
		t:       t,
		cfg:     cfg,
		now:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		groups:  map[string]*group{},
		timers:  map[machineTimer]machineDue{},
		answers: map[waiterID]answer{},
		records: map[string][][]byte{},
	}
}

// group returns the group, creating it if absent (as JoinGroup does).
func (m *machine) group(id string) *group {
	g := m.groups[id]
	if g == nil {
		g = newGroup(id, groupConfig{initialRebalanceDelay: m.cfg.InitialRebalanceDelay}, slog.New(slog.DiscardHandler), m.now)
		m.groups[id] = g
	}
	return g
}

// step runs one event through a group and does what its output asks.
func (m *machine) step(id string, ev event) {
	out := m.group(id).Step(m.now, ev)
	for _, op := range out.timers {
		k := machineTimer{id, op.key}
		delete(m.timers, k)
		if !op.stop {
			m.armed++
			m.timers[k] = machineDue{m.now.Add(op.after), m.armed}
		}
	}
	if out.record != nil {
		m.records[id] = append(m.records[id], out.record)
	}
	for _, a := range out.answers {
		if _, dup := m.answers[a.to]; dup {
			m.t.Fatalf("request %d answered twice", a.to)
		}
		m.answers[a.to] = a
	}
}

// send steps a request event and returns its waiter.
func (m *machine) send(id string, ev func(from waiterID) event) waiterID {
	m.waiters++
	w := m.waiters
	m.step(id, ev(w))
	return w
}

// sendNow is send for requests answered in their own Step.
func (m *machine) sendNow(id string, ev func(from waiterID) event) answer {
	m.t.Helper()
	w := m.send(id, ev)
	a, ok := m.answers[w]
	if !ok {
		m.t.Fatalf("group %s left a %T unanswered", id, ev(w))
	}
	return a
}

func (m *machine) tb() testing.TB              { return m.t }
func (m *machine) initialDelay() time.Duration { return m.cfg.InitialRebalanceDelay }

// advance moves time forward by d, stepping every timer that falls due on the way.
func (m *machine) advance(d time.Duration) {
	target := m.now.Add(d)
	for {
		var next []machineTimer
		for k, due := range m.timers {
			if !due.at.After(target) {
				next = append(next, k)
			}
		}
		if len(next) == 0 {
			break
		}
		sort.Slice(next, func(i, j int) bool {
			a, b := m.timers[next[i]], m.timers[next[j]]
			if !a.at.Equal(b.at) {
				return a.at.Before(b.at)
			}
			return a.seq < b.seq
		})
		k := next[0]
		if at := m.timers[k].at; at.After(m.now) {
			m.now = at
		}
		delete(m.timers, k)
		m.step(k.group, timerEvent{k.key})
	}
	m.now = target
}

func (m *machine) do(req kmsg.Request) kmsg.Response {
	m.t.Helper()
	c := m.async(req)
	if !c.try() {
		m.t.Fatalf("%s waits; use async", kmsg.NameForKey(req.Key()))
	}
	return c.resp
}

// async steps req; its call has the answer once a Step gave it.
func (m *machine) async(req kmsg.Request) *call {
	m.t.Helper()
	wire := roundTrip(m.t, req)
	answered := func(resp kmsg.Response) *call {
		resp = checkResponse(m.t, req, resp)
		return &call{t: m.t, poll: func() (kmsg.Response, bool) { return resp, true }}
	}
	promised := func(w waiterID, encode func(answer) kmsg.Response) *call {
		return &call{t: m.t, poll: func() (kmsg.Response, bool) {
			a, ok := m.answers[w]
			if !ok {
				return nil, false
			}
			return checkResponse(m.t, req, encode(a)), true
		}}
	}
	switch r := wire.(type) {
	case *kmsg.JoinGroupRequest:
		jr, code := decodeJoin(&m.cfg, testClient, r)
		if code != 0 {
			return answered(encodeJoin(r, answer{join: &joinResult{errCode: code, generation: -1, memberID: r.MemberID}}))
		}
		w := m.send(r.Group, func(from waiterID) event { return joinEvent{from: from, req: jr} })
		return promised(w, func(a answer) kmsg.Response { return encodeJoin(r, a) })
	case *kmsg.SyncGroupRequest:
		ev := decodeSync(r)
		w := m.send(r.Group, func(from waiterID) event { ev.from = from; return ev })
		return promised(w, func(a answer) kmsg.Response { return encodeSync(r, a) })
	case *kmsg.HeartbeatRequest:
		ev := decodeHeartbeat(r)
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = m.sendNow(r.Group, func(from waiterID) event { ev.from = from; return ev }).code
		return answered(resp)
	case *kmsg.LeaveGroupRequest:
		var codes []int16
		for _, ev := range decodeLeave(r) {
			codes = append(codes, m.sendNow(r.Group, func(from waiterID) event { ev.from = from; return ev }).code)
		}
		return answered(encodeLeave(r, 0, codes))
	case *kmsg.OffsetCommitRequest:
		// The group's check only: a machine stores no offsets.
		ev := decodeCommit(r)
		code := m.sendNow(r.Group, func(from waiterID) event { ev.from = from; return ev }).code
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return answered(resp)
	default:
		m.t.Fatalf("machine: %s is not a group state machine request", kmsg.NameForKey(req.Key()))
		return nil
	}
}

func (m *machine) joining(id string, n int) {
	m.t.Helper()
	expectWaiting(m.t, id, m.groups[id], n, -1)
}

func (m *machine) syncing(id string, n int) {
	m.t.Helper()
	expectWaiting(m.t, id, m.groups[id], -1, n)
}

func (m *machine) state(id string) state {
	if g := m.groups[id]; g != nil {
		return g.state
	}
	return stateDead
}

func (m *machine) heartbeat(group, member string, gen int32) int16 {
	return heartbeat(m, group, member, gen)
}

func (m *machine) commit(group, member string, gen int32, offsets map[int32]int64) int16 {
	m.t.Helper()
	return commit(m, group, member, gen, offsets)
}

func (m *machine) stableGroup(id string, n int, opts ...joinOpt) []*kmsg.JoinGroupResponse {
	m.t.Helper()
	return stableGroup(m, id, n, opts...)
}

func (m *machine) syncAll(id string, resps []*kmsg.JoinGroupResponse) {
	m.t.Helper()
	syncAll(m, id, resps)
}
