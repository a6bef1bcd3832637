package group

import (
	"context"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file is the coordinator's IO loop around the groups' state machines: every Step of a
// group runs under its cell's mutex, the timers it asks for are armed and stopped there too
// (so that a timer that fires after being replaced is recognised and ignored), and the
// metadata record it asks for is written, and its answers delivered, after the mutex is
// released.

// cell holds one group with what the coordinator keeps for it. mu guards g, timers, waiters
// and version; writeMu orders the group's metadata writes and guards written.
type cell struct {
	id string

	mu      sync.Mutex
	g       *group
	timers  map[timerKey]*armed
	waiters map[waiterID]chan<- answer // requests waiting for the group's answer
	version uint64                     // metadata records the group has asked for

	writeMu sync.Mutex
	written uint64 // version of the newest metadata record written (MaxUint64: deleted)
}

// armed is one armed timer of a cell.
type armed struct{ t Timer }

// effects is what is left of a Step once its timers are applied, done without the cell's
// mutex.
type effects struct {
	record     []byte
	version    uint64
	deliveries []delivery
	rebalances int
}

type delivery struct {
	ch chan<- answer
	a  answer
}

func (c *Coordinator) newCell(id string) *cell {
	g := newGroup(id, groupConfig{initialRebalanceDelay: c.cfg.InitialRebalanceDelay}, c.log, c.clock.Now())
	return &cell{id: id, g: g, timers: make(map[timerKey]*armed), waiters: make(map[waiterID]chan<- answer)}
}

// lookup returns the group's cell, or nil.
func (c *Coordinator) lookup(id string) *cell {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

// getOrCreate returns the group's cell, creating an empty group if absent (Dead once the
// coordinator is closed).
func (c *Coordinator) getOrCreate(id string) *cell {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.groups[id]
	if cl == nil {
		cl = c.newCell(id)
		if c.closed.Load() {
			cl.g.state = stateDead
		}
		c.groups[id] = cl
	}
	return cl
}

// stepLocked runs ev through cl's group at the clock's time and applies the timer
// operations; cl.mu is held.
func (c *Coordinator) stepLocked(cl *cell, ev event) effects {
	out := cl.g.Step(c.clock.Now(), ev)
	for _, op := range out.timers {
		if a := cl.timers[op.key]; a != nil {
			a.t.Stop()
			delete(cl.timers, op.key)
		}
		if !op.stop && !c.closed.Load() {
			a := &armed{}
			key := op.key
			a.t = c.clock.AfterFunc(op.after, func() { c.fire(cl, key, a) })
			cl.timers[key] = a
		}
	}
	eff := effects{record: out.record, rebalances: out.rebalances}
	if out.record != nil {
		cl.version++
		eff.version = cl.version
	}
	for _, a := range out.answers {
		if ch, ok := cl.waiters[a.to]; ok {
			delete(cl.waiters, a.to)
			eff.deliveries = append(eff.deliveries, delivery{ch, a})
		}
	}
	return eff
}

// finish does a Step's IO once cl.mu is released: the metadata record is written (unless a
// newer one already was), then the answers are delivered.
func (c *Coordinator) finish(cl *cell, eff effects) {
	if eff.rebalances > 0 {
		c.metrics.rebalances.Add(float64(eff.rebalances))
	}
	if eff.record != nil {
		cl.writeMu.Lock()
		if eff.version > cl.written {
			cl.written = eff.version
			if err := c.offsets.storeGroup(cl.id, eff.record); err != nil {
				c.log.Error("store group metadata", "group", cl.id, "err", err)
			}
		}
		cl.writeMu.Unlock()
	}
	for _, d := range eff.deliveries {
		d.ch <- d.a
	}
}

// step runs one event through cl's group and does its IO.
func (c *Coordinator) step(cl *cell, ev event) {
	cl.mu.Lock()
	eff := c.stepLocked(cl, ev)
	cl.mu.Unlock()
	c.finish(cl, eff)
}

// ask runs the request event ev(w) through cl's group, w naming the request, and returns
// the channel its answer arrives on (at once, or from a later Step).
func (c *Coordinator) ask(cl *cell, ev func(from waiterID) event) (waiterID, <-chan answer) {
	w := waiterID(c.nextWaiter.Add(1))
	ch := make(chan answer, 1)
	cl.mu.Lock()
	cl.waiters[w] = ch
	eff := c.stepLocked(cl, ev(w))
	cl.mu.Unlock()
	c.finish(cl, eff)
	return w, ch
}

// askNow is ask for requests the group answers in the same Step.
func (c *Coordinator) askNow(cl *cell, ev func(from waiterID) event) answer {
	w, ch := c.ask(cl, ev)
	select {
	case a := <-ch:
		return a
	default:
		c.forget(cl, w)
		c.log.Error("group left a request unanswered", "group", cl.id)
		return answer{code: errCoordinatorNotAvailable}
	}
}

// forget drops a waiting request whose requester gave up; its answer, if any comes, is
// discarded. The group itself is not told: a member whose JoinGroup was abandoned still
// counts as joined, as its client typically retries at once.
func (c *Coordinator) forget(cl *cell, w waiterID) {
	cl.mu.Lock()
	delete(cl.waiters, w)
	cl.mu.Unlock()
}

// fire delivers a timer's firing to its group, unless the timer was stopped or replaced
// meanwhile or the coordinator is closed.
func (c *Coordinator) fire(cl *cell, key timerKey, a *armed) {
	cl.mu.Lock()
	if c.closed.Load() || cl.timers[key] != a {
		cl.mu.Unlock()
		return
	}
	delete(cl.timers, key)
	eff := c.stepLocked(cl, timerEvent{key})
	cl.mu.Unlock()
	c.finish(cl, eff)
}

// stopCell stops cl's group (answering its blocked requests with code) and all its timers.
func (c *Coordinator) stopCell(cl *cell, code int16, dead bool) {
	cl.mu.Lock()
	eff := c.stopLocked(cl, code, dead)
	cl.mu.Unlock()
	c.finish(cl, eff)
}

// stopLocked is stopCell with cl.mu held.
func (c *Coordinator) stopLocked(cl *cell, code int16, dead bool) effects {
	eff := c.stepLocked(cl, stopEvent{code: code, dead: dead})
	for key, a := range cl.timers {
		a.t.Stop()
		delete(cl.timers, key)
	}
	return eff
}

// deleteMetadata writes the tombstone of cl's group metadata; records the group asked for
// before are not written after it.
func (c *Coordinator) deleteMetadata(cl *cell) error {
	cl.writeMu.Lock()
	defer cl.writeMu.Unlock()
	cl.written = math.MaxUint64
	return c.offsets.storeGroup(cl.id, nil)
}

// reply is a request's answer, or the promise of one from a group's later Step.
type reply struct {
	resp    kmsg.Response // the answer, when known at once
	ch      <-chan answer // else: where the group's answer arrives
	encode  func(answer) kmsg.Response
	onClose answer // the answer if the coordinator closes first
	cancel  func() // forgets the request
}

// wait returns the answer, waiting for it until ctx ends or done is closed.
func (p reply) wait(ctx context.Context, done <-chan struct{}) (kmsg.Response, error) {
	if p.ch == nil {
		return p.resp, nil
	}
	select {
	case a := <-p.ch:
		return p.encode(a), nil
	case <-ctx.Done():
		p.cancel()
		return nil, ctx.Err()
	case <-done:
		p.cancel()
		return p.encode(p.onClose), nil
	}
}

// poll returns the answer if it has arrived, without waiting. Once it returned an answer,
// it must not be called again.
func (p reply) poll() (kmsg.Response, bool) {
	if p.ch == nil {
		return p.resp, true
	}
	select {
	case a := <-p.ch:
		return p.encode(a), true
	default:
		return nil, false
	}
}

// promise is the reply to a request event sent with ask.
func (c *Coordinator) promise(cl *cell, w waiterID, ch <-chan answer, encode func(answer) kmsg.Response, onClose answer) reply {
	return reply{ch: ch, encode: encode, onClose: onClose, cancel: func() { c.forget(cl, w) }}
}
