package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/broker/storage"
)

// Defaults of Config.
const (
	DefaultOffsetsPartitions      = 50
	DefaultOffsetsSegmentBytes    = 4 << 20
	DefaultInitialRebalanceDelay  = 3 * time.Second
	DefaultMinSessionTimeout      = 6 * time.Second
	DefaultMaxSessionTimeout      = 30 * time.Minute
	DefaultOffsetsRetention       = 7 * 24 * time.Hour
	DefaultRetentionCheckInterval = 10 * time.Minute
	DefaultMaxMetadataBytes       = 4096
)

// Config configures a Coordinator. Zero values mean the defaults above.
type Config struct {
	Store  *storage.Store // required; holds __consumer_offsets
	Logger *slog.Logger   // nil = discard
	Clock  Clock          // nil = SystemClock

	// OffsetsPartitions is the partition count of __consumer_offsets when it is created
	// (offsets.topic.num.partitions). An existing topic keeps its count.
	OffsetsPartitions int32
	// OffsetsSegmentBytes is the segment size of __consumer_offsets and the number of bytes
	// of commits after which a partition's live offsets are rewritten (see the package doc).
	OffsetsSegmentBytes int64
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms; negative disables it.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts members may ask for
	// (group.min/max.session.timeout.ms).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes: offsets of a group without members
	// expire this long after the later of their commit and the group becoming empty.
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes.
	MaxMetadataBytes int
	// Registerer receives the coordinator's metrics; nil = none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.OffsetsPartitions <= 0 {
		c.OffsetsPartitions = DefaultOffsetsPartitions
	}
	if c.OffsetsSegmentBytes <= 0 {
		c.OffsetsSegmentBytes = DefaultOffsetsSegmentBytes
	}
	switch {
	case c.InitialRebalanceDelay == 0:
		c.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	case c.InitialRebalanceDelay < 0:
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = DefaultOffsetsRetention
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = DefaultRetentionCheckInterval
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
}

// Coordinator is the group coordinator of a single-node broker: it implements
// server.Groups. Each group has its own mutex; committed offsets live in an offsetStore whose
// partitions have their own mutexes. Lock order: Coordinator.mu, then group.mu, then the
// offset log's mutex.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	store   *storage.Store
	offsets *offsetStore
	metrics *metrics

	loaded  chan struct{} // closed when the offsets are loaded (or loading failed)
	ready   atomic.Bool   // offsets loaded
	loadErr error         // set before loaded is closed

	closed   atomic.Bool
	done     chan struct{} // closed by Close
	loaderWG sync.WaitGroup

	mu          sync.Mutex
	groups      map[string]*group
	expireTimer Timer
}

var _ server.Groups = (*Coordinator)(nil)

// New opens the coordinator: it creates __consumer_offsets if absent and starts loading the
// committed offsets in the background. Until loading finishes, requests are answered with
// COORDINATOR_NOT_AVAILABLE (clients retry).
func New(cfg Config) (*Coordinator, error) {
	if cfg.Store == nil {
		return nil, errors.New("group coordinator: no store")
	}
	cfg.setDefaults()
	c := &Coordinator{
		cfg:    cfg,
		log:    cfg.Logger,
		clock:  cfg.Clock,
		store:  cfg.Store,
		loaded: make(chan struct{}),
		done:   make(chan struct{}),
		groups: make(map[string]*group),
	}
	c.metrics = newMetrics(c, cfg.Registerer)
	nowMs := func() int64 { return c.clock.Now().UnixMilli() }
	offs, err := openOffsets(cfg.Store, cfg.OffsetsPartitions, cfg.OffsetsSegmentBytes, nowMs, c.log)
	if err != nil {
		return nil, fmt.Errorf("group coordinator: %w", err)
	}
	c.offsets = offs
	c.loaderWG.Add(1)
	go c.load()
	return c, nil
}

func (c *Coordinator) load() {
	defer c.loaderWG.Done()
	defer close(c.loaded)
	start := time.Now()
	if err := c.offsets.load(); err != nil {
		c.loadErr = err
		c.log.Error("load committed offsets", "err", err)
		return
	}
	restored := 0
	for id, raw := range c.offsets.groupMetadata() {
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(raw); err != nil {
			c.log.Warn("skip undecodable group metadata", "group", id, "err", err)
			continue
		}
		g := newGroup(c, id)
		g.restore(v)
		c.mu.Lock()
		c.groups[id] = g
		if c.closed.Load() { // Close ran meanwhile: stop this group's timers too
			g.mu.Lock()
			g.stop(errCoordinatorNotAvailable)
			g.mu.Unlock()
		}
		c.mu.Unlock()
		restored++
	}
	c.ready.Store(true)
	c.log.Info("loaded committed offsets", "restored_groups", restored, "groups", len(c.offsets.groupIDs()), "took", time.Since(start).Round(time.Millisecond))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() {
		c.expireTimer = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, c.expireLoop)
	}
}

// Loaded returns a channel closed once the committed offsets are loaded (or loading
// failed: see LoadErr).
func (c *Coordinator) Loaded() <-chan struct{} { return c.loaded }

// LoadErr is the error loading the committed offsets failed with, once Loaded is closed.
func (c *Coordinator) LoadErr() error {
	<-c.loaded
	return c.loadErr
}

// Close stops every timer, answers blocked JoinGroup/SyncGroup requests with
// COORDINATOR_NOT_AVAILABLE and waits for loading to end. It does not close the store.
func (c *Coordinator) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	close(c.done)
	c.mu.Lock()
	if c.expireTimer != nil {
		c.expireTimer.Stop()
	}
	for _, g := range c.groups {
		g.mu.Lock()
		g.stop(errCoordinatorNotAvailable)
		g.mu.Unlock()
	}
	c.mu.Unlock()
	c.loaderWG.Wait()
	return nil
}

// versions are the API versions the coordinator implements.
var versions = map[int16][2]int16{
	8:  {0, 8}, // OffsetCommit (v9+: KIP-848 member epochs, v10: topic ids)
	9:  {0, 8}, // OffsetFetch
	11: {0, 9}, // JoinGroup
	12: {0, 4}, // Heartbeat
	13: {0, 5}, // LeaveGroup
	14: {0, 5}, // SyncGroup
	15: {0, 5}, // DescribeGroups
	16: {0, 5}, // ListGroups
	42: {0, 2}, // DeleteGroups
	47: {0, 0}, // OffsetDelete
}

// Versions reports the [min,max] version implemented for each group API key.
func (c *Coordinator) Versions() map[int16][2]int16 {
	out := make(map[int16][2]int16, len(versions))
	for k, v := range versions {
		out[k] = v
	}
	return out
}

// Handle answers one group API request.
func (c *Coordinator) Handle(ctx context.Context, client server.Client, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.OffsetCommitRequest:
		return c.offsetCommit(r), nil
	case *kmsg.OffsetFetchRequest:
		return c.offsetFetch(r), nil
	case *kmsg.JoinGroupRequest:
		return c.joinGroup(ctx, client, r)
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(ctx, r)
	case *kmsg.HeartbeatRequest:
		return c.heartbeat(r), nil
	case *kmsg.LeaveGroupRequest:
		return c.leaveGroup(r), nil
	case *kmsg.DescribeGroupsRequest:
		return c.describeGroups(r), nil
	case *kmsg.ListGroupsRequest:
		return c.listGroups(r), nil
	case *kmsg.DeleteGroupsRequest:
		return c.deleteGroups(r), nil
	case *kmsg.OffsetDeleteRequest:
		return c.offsetDelete(r), nil
	default:
		return nil, fmt.Errorf("group coordinator: unexpected request %s (key %d)", kmsg.NameForKey(req.Key()), req.Key())
	}
}

// available reports the error code of a coordinator that cannot answer yet (or any more).
func (c *Coordinator) available() int16 {
	if c.closed.Load() || !c.ready.Load() {
		return errCoordinatorNotAvailable
	}
	return 0
}

// lookup returns the group, or nil.
func (c *Coordinator) lookup(id string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

// getOrCreate returns the group, creating it (empty) if absent.
func (c *Coordinator) getOrCreate(id string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[id]
	if g == nil {
		g = newGroup(c, id)
		if c.closed.Load() {
			g.state = stateDead
		}
		c.groups[id] = g
	}
	return g
}

func strPtr(s string) *string { return &s }

func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

// ---- JoinGroup / SyncGroup / Heartbeat / LeaveGroup ----

func (c *Coordinator) joinGroup(ctx context.Context, client server.Client, r *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	fill := func(res joinResult) *kmsg.JoinGroupResponse {
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
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if r.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	switch {
	case c.available() != 0:
		return fill(joinResult{errCode: c.available(), generation: -1, memberID: r.MemberID}), nil
	case r.Group == "":
		return fill(joinResult{errCode: errInvalidGroupID, generation: -1, memberID: r.MemberID}), nil
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return fill(joinResult{errCode: errInvalidSessionTimeout, generation: -1, memberID: r.MemberID}), nil
	case r.ProtocolType == "" || len(r.Protocols) == 0:
		return fill(joinResult{errCode: errInconsistentProtocol, generation: -1, memberID: r.MemberID}), nil
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
	res, ch := c.getOrCreate(r.Group).join(jr)
	if ch != nil {
		select {
		case res = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			res = joinResult{errCode: errCoordinatorNotAvailable, generation: -1, memberID: r.MemberID}
		}
	}
	return fill(res), nil
}

func (c *Coordinator) syncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	fill := func(res syncResult) *kmsg.SyncGroupResponse {
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
	if code := c.available(); code != 0 {
		return fill(syncResult{errCode: code}), nil
	}
	if r.Group == "" {
		return fill(syncResult{errCode: errInvalidGroupID}), nil
	}
	g := c.lookup(r.Group)
	if g == nil {
		return fill(syncResult{errCode: errUnknownMemberID}), nil
	}
	var assignments map[string][]byte
	if len(r.GroupAssignment) > 0 {
		assignments = make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			assignments[a.MemberID] = slices.Clone(a.MemberAssignment)
		}
	}
	var instance, ptype, proto *string
	if r.Version >= 3 {
		instance = nonEmpty(r.InstanceID)
	}
	if r.Version >= 5 {
		ptype, proto = r.ProtocolType, r.Protocol
	}
	res, ch := g.sync(r.Generation, r.MemberID, instance, ptype, proto, assignments)
	if ch != nil {
		select {
		case res = <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			res = syncResult{errCode: errCoordinatorNotAvailable}
		}
	}
	return fill(res), nil
}

func (c *Coordinator) heartbeat(r *kmsg.HeartbeatRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	g := c.lookup(r.Group)
	if g == nil {
		resp.ErrorCode = errUnknownMemberID
		return resp
	}
	var instance *string
	if r.Version >= 3 {
		instance = nonEmpty(r.InstanceID)
	}
	resp.ErrorCode = g.heartbeat(r.Generation, r.MemberID, instance)
	return resp
}

func (c *Coordinator) leaveGroup(r *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	g := c.lookup(r.Group)
	if r.Version < 3 {
		if g == nil {
			resp.ErrorCode = errUnknownMemberID
		} else {
			resp.ErrorCode = g.leave(r.MemberID, nil)
		}
		return resp
	}
	for _, m := range r.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = m.MemberID
		rm.InstanceID = m.InstanceID
		if g == nil {
			rm.ErrorCode = errUnknownMemberID
		} else {
			rm.ErrorCode = g.leave(m.MemberID, nonEmpty(m.InstanceID))
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// ---- OffsetCommit / OffsetFetch / OffsetDelete ----

func (c *Coordinator) offsetCommit(r *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) kmsg.Response {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	if code := c.available(); code != 0 {
		return setAll(code)
	}
	if r.Group == "" {
		return setAll(errInvalidGroupID)
	}
	var instance *string
	if r.Version >= 7 {
		instance = nonEmpty(r.InstanceID)
	}
	// v0 has no generation or member: it is a simple consumer's commit, accepted only
	// while the group has no members, so that it can never move the offsets of a
	// group whose members are consuming (their next commits would silently overwrite
	// it, or it theirs).
	gen, member := r.Generation, r.MemberID
	if r.Version == 0 {
		gen, member = -1, ""
	}
	if g := c.lookup(r.Group); g != nil {
		if code := g.checkCommit(gen, member, instance); code != 0 {
			return setAll(code)
		}
	} else if gen >= 0 {
		return setAll(errIllegalGeneration)
	}

	now := c.clock.Now().UnixMilli()
	var keys []topicPartition
	var values []offsetValue
	var where []*kmsg.OffsetCommitResponseTopicPartition
	for i, t := range r.Topics {
		topic := c.store.Topic(t.Topic)
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			switch {
			case topic == nil || topic.Partition(p.Partition) == nil:
				rp.ErrorCode = errUnknownTopicOrPartition
				continue
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = errOffsetMetadataTooLarge
				continue
			}
			v := offsetValue{offset: p.Offset, leaderEpoch: -1, commitTime: now}
			if r.Version >= 6 {
				v.leaderEpoch = p.LeaderEpoch
			}
			if p.Metadata != nil {
				v.metadata = *p.Metadata
			}
			keys = append(keys, topicPartition{t.Topic, p.Partition})
			values = append(values, v)
			where = append(where, rp)
		}
	}
	if len(keys) == 0 {
		return resp
	}
	start := time.Now()
	if err := c.offsets.commit(r.Group, keys, values); err != nil {
		c.metrics.commitErrors.Inc()
		c.log.Error("commit offsets", "group", r.Group, "err", err)
		for _, rp := range where {
			rp.ErrorCode = errCoordinatorNotAvailable
		}
		return resp
	}
	c.metrics.commits.Inc()
	c.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	return resp
}

func (c *Coordinator) offsetFetch(r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	code := c.available()
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			if code != 0 {
				g.ErrorCode = code
				resp.Groups = append(resp.Groups, g)
				continue
			}
			var req []kmsg.OffsetFetchRequestTopic
			all := rg.Topics == nil
			for _, t := range rg.Topics {
				req = append(req, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
			for _, t := range c.fetchOffsets(rg.Group, req, all) {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	if code != 0 {
		resp.ErrorCode = code
		if r.Version < 2 { // no top-level error code: report it per partition
			resp.Topics = c.fetchOffsets("", r.Topics, false)
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return resp
	}
	resp.Topics = c.fetchOffsets(r.Group, r.Topics, r.Topics == nil && r.Version >= 2)
	return resp
}

// fetchOffsets answers an OffsetFetch for one group: the requested partitions (offset -1 for
// those without a commit), or with all every committed partition.
func (c *Coordinator) fetchOffsets(group string, topics []kmsg.OffsetFetchRequestTopic, all bool) []kmsg.OffsetFetchResponseTopic {
	var out []kmsg.OffsetFetchResponseTopic
	part := func(p int32, v offsetValue, ok bool) kmsg.OffsetFetchResponseTopicPartition {
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch, rp.Metadata = -1, -1, strPtr("")
		if ok {
			rp.Offset, rp.LeaderEpoch, rp.Metadata = v.offset, v.leaderEpoch, strPtr(v.metadata)
		}
		return rp
	}
	if all {
		offs := c.offsets.all(group)
		tps := make([]topicPartition, 0, len(offs))
		for tp := range offs {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, func(a, b topicPartition) int {
			if c := strings.Compare(a.topic, b.topic); c != 0 {
				return c
			}
			return int(a.partition - b.partition)
		})
		for _, tp := range tps {
			if len(out) == 0 || out[len(out)-1].Topic != tp.topic {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = tp.topic
				out = append(out, rt)
			}
			rt := &out[len(out)-1]
			rt.Partitions = append(rt.Partitions, part(tp.partition, offs[tp], true))
		}
		return out
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			var v offsetValue
			ok := false
			if group != "" {
				v, ok = c.offsets.get(group, topicPartition{t.Topic, p})
			}
			rt.Partitions = append(rt.Partitions, part(p, v, ok))
		}
		out = append(out, rt)
	}
	return out
}

func (c *Coordinator) offsetDelete(r *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	g := c.lookup(r.Group)
	if g == nil && !c.offsets.has(r.Group) {
		resp.ErrorCode = errGroupIDNotFound
		return resp
	}
	subscribed := map[string]bool{}
	if g != nil {
		g.mu.Lock()
		nonConsumer := len(g.members) > 0 && g.protocolType != "consumer"
		if !nonConsumer {
			for _, m := range g.members {
				var meta kmsg.ConsumerMemberMetadata
				if err := meta.ReadFrom(m.metadataFor(g.protocol)); err == nil {
					for _, t := range meta.Topics {
						subscribed[t] = true
					}
				}
			}
		}
		g.mu.Unlock()
		if nonConsumer {
			resp.ErrorCode = errNonEmptyGroup
			return resp
		}
	}
	var keys []topicPartition
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if subscribed[t.Topic] {
				rp.ErrorCode = errGroupSubscribedToTopic
			} else {
				keys = append(keys, topicPartition{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if err := c.offsets.remove(r.Group, keys, func(topicPartition, offsetValue) bool { return false }); err != nil {
		c.log.Error("delete offsets", "group", r.Group, "err", err)
		resp.ErrorCode = errCoordinatorNotAvailable
	}
	return resp
}

// ---- DescribeGroups / ListGroups / DeleteGroups ----

func (c *Coordinator) describeGroups(r *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	code := c.available()
	for _, id := range r.Groups {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = id
		if code != 0 {
			d.ErrorCode = code
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d.State = stateDead.String()
		if g := c.lookup(id); g != nil {
			g.describe(&d)
		}
		if d.State == stateDead.String() && c.offsets.has(id) {
			d.State = stateEmpty.String()
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

func (g *group) describe(d *kmsg.DescribeGroupsResponseGroup) {
	g.mu.Lock()
	defer g.mu.Unlock()
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

func (c *Coordinator) listGroups(r *kmsg.ListGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	if resp.ErrorCode = c.available(); resp.ErrorCode != 0 {
		return resp
	}
	if len(r.TypesFilter) > 0 && !slices.ContainsFunc(r.TypesFilter, func(t string) bool { return strings.EqualFold(t, "classic") }) {
		return resp
	}
	type info struct{ state, protocolType string }
	seen := map[string]info{}
	c.mu.Lock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	c.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		if g.state != stateDead {
			seen[g.id] = info{g.state.String(), g.protocolType}
		}
		g.mu.Unlock()
	}
	for _, id := range c.offsets.groupIDs() {
		if _, ok := seen[id]; !ok {
			seen[id] = info{stateEmpty.String(), ""}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		in := seen[id]
		if len(r.StatesFilter) > 0 && !slices.ContainsFunc(r.StatesFilter, func(s string) bool { return strings.EqualFold(s, in.state) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = id, in.protocolType, in.state, "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func (c *Coordinator) deleteGroups(r *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	code := c.available()
	for _, id := range r.Groups {
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group = id
		if d.ErrorCode = code; code == 0 {
			d.ErrorCode = c.deleteGroup(id)
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

// deleteGroup deletes an empty group and its offsets.
func (c *Coordinator) deleteGroup(id string) int16 {
	if id == "" {
		return errInvalidGroupID
	}
	found := false
	c.mu.Lock()
	if g := c.groups[id]; g != nil {
		g.mu.Lock()
		if g.state != stateEmpty && g.state != stateDead || len(g.members) > 0 || len(g.pending) > 0 {
			g.mu.Unlock()
			c.mu.Unlock()
			return errNonEmptyGroup
		}
		g.state = stateDead
		g.stop(errCoordinatorNotAvailable)
		g.mu.Unlock()
		delete(c.groups, id)
		found = true
	}
	c.mu.Unlock()
	if found {
		if err := c.offsets.storeGroup(id, nil); err != nil {
			c.log.Error("delete group metadata", "group", id, "err", err)
			return errCoordinatorNotAvailable
		}
	}
	offs := c.offsets.all(id)
	if len(offs) > 0 {
		found = true
		keys := make([]topicPartition, 0, len(offs))
		for tp := range offs {
			keys = append(keys, tp)
		}
		if err := c.offsets.remove(id, keys, nil); err != nil {
			c.log.Error("delete group offsets", "group", id, "err", err)
			return errCoordinatorNotAvailable
		}
	}
	if !found {
		return errGroupIDNotFound
	}
	return 0
}

// ---- expiry ----

func (c *Coordinator) expireLoop() {
	if c.closed.Load() {
		return
	}
	c.ExpireOffsets()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() {
		c.expireTimer = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, c.expireLoop)
	}
}

// ExpireOffsets deletes the offsets of groups without members that are older than the
// offsets retention, and forgets empty groups without offsets. It runs every
// RetentionCheckInterval; tests call it directly.
func (c *Coordinator) ExpireOffsets() {
	if c.available() != 0 {
		return
	}
	now := c.clock.Now()
	for _, id := range c.offsets.groupIDs() {
		var emptySince int64
		if g := c.lookup(id); g != nil {
			g.mu.Lock()
			members := len(g.members) + len(g.pending)
			emptySince = g.emptySince.UnixMilli()
			g.mu.Unlock()
			if members > 0 {
				continue
			}
		}
		offs := c.offsets.all(id)
		keys := make([]topicPartition, 0, len(offs))
		for tp := range offs {
			keys = append(keys, tp)
		}
		cutoff := now.Add(-c.cfg.OffsetsRetention).UnixMilli()
		err := c.offsets.remove(id, keys, func(_ topicPartition, v offsetValue) bool {
			return max(v.commitTime, emptySince) > cutoff
		})
		if err != nil {
			c.log.Error("expire offsets", "group", id, "err", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, g := range c.groups {
		g.mu.Lock()
		if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && !c.offsets.has(id) {
			g.state = stateDead
			g.stop(errCoordinatorNotAvailable)
			delete(c.groups, id)
			if c.offsets.hasMeta(id) {
				if err := c.offsets.storeGroup(id, nil); err != nil {
					c.log.Error("delete group metadata", "group", id, "err", err)
				}
			}
		}
		g.mu.Unlock()
	}
}
