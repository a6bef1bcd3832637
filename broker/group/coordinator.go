package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// server.Groups. It does every group's IO: it steps a group's state machine under that
// group's mutex (see cell), arms the timers the group asks for with its Clock, writes the
// group's metadata records after releasing the mutex and delivers the answers. Committed
// offsets live in an offsetStore whose partitions have their own mutexes. Lock order:
// Coordinator.mu, then a cell's mu; a cell's writeMu and the offset logs' mutexes are never
// taken while a cell's mu is held.
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

	nextWaiter atomic.Uint64 // waiterIDs handed out

	mu          sync.Mutex
	groups      map[string]*cell
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
		groups: make(map[string]*cell),
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
		cl := c.newCell(id)
		c.step(cl, restoreEvent{v}) // arms the members' session timers
		c.mu.Lock()
		c.groups[id] = cl
		if c.closed.Load() { // Close ran meanwhile: stop this group's timers too
			c.stopCell(cl, errCoordinatorNotAvailable, false)
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
	for _, cl := range c.groups {
		c.stopCell(cl, errCoordinatorNotAvailable, false)
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

// Handle answers one group API request. A JoinGroup or SyncGroup may wait for other
// members' requests; it returns ctx.Err() if ctx ends first.
func (c *Coordinator) Handle(ctx context.Context, client server.Client, req kmsg.Request) (kmsg.Response, error) {
	p, err := c.begin(client, req)
	if err != nil {
		return nil, err
	}
	return p.wait(ctx, c.done)
}

// begin does everything a request asks up to its answer, which it returns or, for a
// JoinGroup or SyncGroup that waits for other members, promises.
func (c *Coordinator) begin(client server.Client, req kmsg.Request) (reply, error) {
	switch r := req.(type) {
	case *kmsg.OffsetCommitRequest:
		return reply{resp: c.offsetCommit(r)}, nil
	case *kmsg.OffsetFetchRequest:
		return reply{resp: c.offsetFetch(r)}, nil
	case *kmsg.JoinGroupRequest:
		return c.joinGroup(client, r), nil
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(r), nil
	case *kmsg.HeartbeatRequest:
		return reply{resp: c.heartbeat(r)}, nil
	case *kmsg.LeaveGroupRequest:
		return reply{resp: c.leaveGroup(r)}, nil
	case *kmsg.DescribeGroupsRequest:
		return reply{resp: c.describeGroups(r)}, nil
	case *kmsg.ListGroupsRequest:
		return reply{resp: c.listGroups(r)}, nil
	case *kmsg.DeleteGroupsRequest:
		return reply{resp: c.deleteGroups(r)}, nil
	case *kmsg.OffsetDeleteRequest:
		return reply{resp: c.offsetDelete(r)}, nil
	default:
		return reply{}, fmt.Errorf("group coordinator: unexpected request %s (key %d)", kmsg.NameForKey(req.Key()), req.Key())
	}
}

// available reports the error code of a coordinator that cannot answer yet (or any more).
func (c *Coordinator) available() int16 {
	if c.closed.Load() || !c.ready.Load() {
		return errCoordinatorNotAvailable
	}
	return 0
}

func strPtr(s string) *string { return &s }

func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}
