package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/wait"
)

// Consumer groups driven by real clients (sarama, kgo, kcat) against whole brokers. The
// coordinator's protocol itself is tested in broker/group, against its state machine.

// groupBroker is a real logpipe broker on a temporary directory, restartable on the same
// address and data: in this process (restart = Close and Start), or as a cmd/broker process
// (restart = SIGKILL and start again).
type groupBroker struct {
	t    testing.TB
	addr string

	cfg broker.Config // in this process
	b   *broker.Broker

	bin, data string // as a process
	proc      *brokerProc
}

// groupIni is the [group] section of the test brokers: a short initial rebalance delay and
// short sessions allowed, so that clients form groups quickly.
const groupIni = "[group]\ninitial_rebalance_delay = 300ms\nmin_session_timeout = 1s\n"

// startGroupBroker starts a broker in this process.
func startGroupBroker(t testing.TB) *groupBroker {
	t.Helper()
	gb := &groupBroker{t: t, cfg: testConfig(t.TempDir())}
	gb.cfg.Server.ShutdownTimeout = time.Second
	gb.cfg.Group.InitialRebalanceDelay = 300 * time.Millisecond
	gb.cfg.Group.MinSessionTimeout = time.Second
	gb.start()
	gb.cfg.Server.Listen = gb.addr // restarts keep the address
	t.Cleanup(func() {
		if gb.b != nil {
			gb.b.Close()
		}
	})
	return gb
}

// startGroupBrokerProcess builds cmd/broker and runs it as a process.
func startGroupBrokerProcess(t *testing.T) *groupBroker {
	t.Helper()
	gb := &groupBroker{t: t, bin: buildBroker(t), data: t.TempDir()}
	gb.proc = startProc(t, gb.bin, gb.data, "", groupIni)
	gb.addr = gb.proc.addr
	return gb
}

func (gb *groupBroker) start() {
	gb.t.Helper()
	b, err := broker.Start(gb.cfg, testLogger())
	if err != nil {
		gb.t.Fatalf("start broker: %v", err)
	}
	gb.b, gb.addr = b, b.Addr()
}

// restart restarts the broker: SIGKILL for a process, Close for one in this process.
func (gb *groupBroker) restart() {
	gb.t.Helper()
	if gb.proc != nil {
		gb.proc.kill()
		gb.proc = startProc(gb.t.(*testing.T), gb.bin, gb.data, gb.addr, groupIni)
		return
	}
	if err := gb.b.Close(); err != nil {
		gb.t.Fatalf("close broker: %v", err)
	}
	gb.b = nil
	gb.start()
}

// produce writes n records to each of the topic's partitions.
func produce(t testing.TB, addr, topic string, partitions int32, n int) {
	t.Helper()
	cl := newKgo(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// committed returns the group's committed offset of each partition (-1 if none).
func committed(t testing.TB, addr, group, topic string, partitions int32) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKgo(t, addr))
	defer adm.Close()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil
	}
	out := make([]int64, partitions)
	for p := range out {
		out[p] = -1
		if o, ok := offs.Lookup(topic, int32(p)); ok && o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

// tracker records which member owns which partition and every delivered offset, and flags
// a partition claimed by two live members at once.
type tracker struct {
	mu         sync.Mutex
	owner      map[int32]string
	dead       map[string]bool
	delivered  map[int32][]int64
	violations []string
	setups     []setup
}

type setup struct {
	member string
	at     time.Time
	parts  []int32
}

func newTracker() *tracker {
	return &tracker{owner: map[int32]string{}, dead: map[string]bool{}, delivered: map[int32][]int64{}}
}

func (tr *tracker) claim(member string, parts []int32) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.dead[member] {
		return
	}
	for _, p := range parts {
		if o := tr.owner[p]; o != "" && o != member {
			tr.violations = append(tr.violations, fmt.Sprintf("partition %d claimed by %s while owned by %s", p, member, o))
		}
		tr.owner[p] = member
	}
	tr.setups = append(tr.setups, setup{member, time.Now(), slices.Clone(parts)})
}

func (tr *tracker) release(member string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for p, o := range tr.owner {
		if o == member {
			delete(tr.owner, p)
		}
	}
}

// kill marks member dead: it owns nothing from now on and its callbacks are ignored.
func (tr *tracker) kill(member string) {
	tr.mu.Lock()
	tr.dead[member] = true
	tr.mu.Unlock()
	tr.release(member)
}

func (tr *tracker) deliver(member string, p int32, off int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.dead[member] {
		return
	}
	tr.delivered[p] = append(tr.delivered[p], off)
}

func (tr *tracker) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, d := range tr.delivered {
		n += len(d)
	}
	return n
}

// owners returns the owner of each partition ("" if none).
func (tr *tracker) owners(n int32) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]string, n)
	for p := range out {
		out[p] = tr.owner[int32(p)]
	}
	return out
}

// quietFor reports whether no member has set up a session for d.
func (tr *tracker) quietFor(d time.Duration) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.setups) == 0 || time.Since(tr.setups[len(tr.setups)-1].at) >= d
}

// setupsSince counts the sessions set up after t.
func (tr *tracker) setupsSince(t time.Time) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, s := range tr.setups {
		if s.at.After(t) {
			n++
		}
	}
	return n
}

// takeDelivered returns the deliveries so far and starts a new record.
func (tr *tracker) takeDelivered() map[int32][]int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	d := tr.delivered
	tr.delivered = map[int32][]int64{}
	return d
}

func (tr *tracker) check(t testing.TB) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.violations) > 0 {
		t.Fatalf("ownership violations: %v", tr.violations)
	}
}

// saramaMember is one sarama ConsumerGroup member with manual commits after every message.
type saramaMember struct {
	name   string
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	dialer *killDialer
}

type saramaHandler struct {
	name  string
	topic string
	tr    *tracker
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.tr.claim(h.name, s.Claims()[h.topic])
	return nil
}

func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.tr.release(h.name)
	return nil
}

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		h.tr.deliver(h.name, msg.Partition, msg.Offset)
		s.MarkMessage(msg, "")
		s.Commit() // synchronous
	}
	return nil
}

// killDialer dials through net.Dialer until killed; then it closes every connection it made
// and refuses new ones, as if the process had died.
type killDialer struct {
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func (d *killDialer) Dial(network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		return nil, errors.New("killed")
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *killDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killed = true
	for _, c := range d.conns {
		c.Close()
	}
}

func saramaGroupConfig(name string, version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = name
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 3 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 5 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.DialTimeout = 2 * time.Second
	return cfg
}

func startSaramaMember(t testing.TB, addr, group, topic, name string, tr *tracker, cfg *sarama.Config) *saramaMember {
	t.Helper()
	m := &saramaMember{name: name, done: make(chan struct{}), dialer: &killDialer{}}
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = m.dialer
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group %s: %v", name, err)
	}
	m.cg = cg
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	h := &saramaHandler{name: name, topic: topic, tr: tr}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop leaves the group cleanly (LeaveGroup).
func (m *saramaMember) stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cg.Close()
	<-m.done
	m.cancel = nil
}

// TestSaramaConsumerGroup runs three sarama members with manual commits against the broker
// as a process, which is killed with SIGKILL and restarted.
func TestSaramaConsumerGroup(t *testing.T) {
	tb := startGroupBrokerProcess(t)
	const topic, group, parts = "orders", "sarama-group", 6
	createTopic(t, tb.addr, topic, parts, nil)
	produce(t, tb.addr, topic, parts, 50)

	tr := newTracker()
	var members []*saramaMember
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("m%d", i)
		members = append(members, startSaramaMember(t, tb.addr, group, topic, name, tr, saramaGroupConfig(name, sarama.V2_8_0_0)))
	}
	wait.For(t, 30*time.Second, "all records consumed and committed", func() bool {
		c := committed(t, tb.addr, group, topic, parts)
		return tr.count() >= parts*50 && slices.Equal(c, []int64{50, 50, 50, 50, 50, 50})
	})
	tr.check(t)
	// Each member owns two partitions.
	per := map[string]int{}
	for _, o := range tr.owners(parts) {
		per[o]++
	}
	if len(per) != 3 || per["m0"] != 2 || per["m1"] != 2 || per["m2"] != 2 {
		t.Fatalf("ownership %v, want 2 partitions for each of 3 members", tr.owners(parts))
	}

	// A member that leaves loses its partitions to the others.
	members[2].stop()
	tr.kill("m2")
	wait.For(t, 10*time.Second, "m2's partitions reassigned after leave", func() bool {
		return !slices.Contains(tr.owners(parts), "")
	})
	tr.check(t)

	// A member that is killed (connections dropped, no LeaveGroup) loses them within the
	// session timeout.
	killedAt := time.Now()
	members[1].dialer.kill()
	tr.kill("m1")
	wait.For(t, 3*time.Second+5*time.Second, "m1's partitions reassigned after kill", func() bool {
		o := tr.owners(parts)
		return !slices.Contains(o, "") && !slices.Contains(o, "m1")
	})
	t.Logf("partitions of the killed member reassigned after %v", time.Since(killedAt).Round(time.Millisecond))
	members[1].stop()
	tr.check(t)

	// More records, consumed by the survivor.
	produce(t, tb.addr, topic, parts, 25)
	wait.For(t, 30*time.Second, "75 records committed per partition", func() bool {
		return slices.Equal(committed(t, tb.addr, group, topic, parts), []int64{75, 75, 75, 75, 75, 75})
	})

	// A new member (sarama with V3_6 versions) joins the survivor.
	startSaramaMember(t, tb.addr, group, topic, "m3", tr, saramaGroupConfig("m3", sarama.V3_6_0_0))
	wait.For(t, 10*time.Second, "m3 joined", func() bool { return slices.Contains(tr.owners(parts), "m3") })
	before := tr.takeDelivered()
	for p := int32(0); p < parts; p++ {
		if got := distinct(before[p]); !slices.Equal(got, seq(0, 75)) {
			t.Fatalf("partition %d: delivered before restart %v, want 0..74", p, got)
		}
	}
	// SIGKILL the broker and start it again on the same address. The group's metadata was
	// stored, so the members may carry on in their generation or rejoin: either way the
	// group settles with m0 and m3 owning all partitions.
	tb.restart()
	wait.For(t, 30*time.Second, "group settled with m0 and m3 after the broker restart", func() bool {
		owners := tr.owners(parts)
		n, who := 0, map[string]bool{}
		for _, o := range owners {
			if o == "m0" || o == "m3" {
				n++
				who[o] = true
			}
		}
		return n == parts && len(who) == 2 && tr.quietFor(time.Second)
	})
	if got := committed(t, tb.addr, group, topic, parts); !slices.Equal(got, []int64{75, 75, 75, 75, 75, 75}) {
		t.Fatalf("committed after restart: %v", got)
	}
	producedAt := time.Now()
	produce(t, tb.addr, topic, parts, 25)
	wait.For(t, 30*time.Second, "100 records committed per partition", func() bool {
		return slices.Equal(committed(t, tb.addr, group, topic, parts), []int64{100, 100, 100, 100, 100, 100})
	})
	tr.check(t)
	// Each partition resumed exactly at its committed offset: the first record delivered
	// after the restart is 75 (no gap, nothing committed delivered again) and every later
	// one arrived. A record is delivered twice only if a rebalance happened meanwhile
	// (at-least-once for records whose commit the rebalance refused); with the group
	// stable throughout, each arrives once.
	after := tr.takeDelivered()
	rebalanced := tr.setupsSince(producedAt)
	for p := int32(0); p < parts; p++ {
		if len(after[p]) == 0 || after[p][0] != 75 {
			t.Fatalf("partition %d: first delivery after restart %v, want 75", p, after[p][:min(1, len(after[p]))])
		}
		if got := distinct(after[p]); !slices.Equal(got, seq(75, 100)) {
			t.Fatalf("partition %d: delivered after restart %v, want 75..99", p, got)
		}
		if len(after[p]) != 25 && rebalanced == 0 {
			t.Fatalf("partition %d: %d deliveries of 25 records in a stable group: %v", p, len(after[p]), after[p])
		}
	}
	if rebalanced > 0 {
		t.Logf("%d session setups after the restart's produce (a rebalance): duplicates allowed", rebalanced)
	}
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func distinct(offs []int64) []int64 {
	out := slices.Clone(offs)
	slices.Sort(out)
	return slices.Compact(out)
}

func TestKgoGroupCommitRecords(t *testing.T) {
	tb := startGroupBroker(t)
	const topic, group, parts = "kgo-events", "kgo-group", 3
	createTopic(t, tb.addr, topic, parts, nil)
	produce(t, tb.addr, topic, parts, 20)

	consume := func(want int) []*kgo.Record {
		cl, err := kgo.NewClient(kgo.SeedBrokers(tb.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
			kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var got []*kgo.Record
		for len(got) < want {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("polled %d of %d records: %v", len(got), want, ctx.Err())
			}
			recs := fs.Records()
			got = append(got, recs...)
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		return got
	}
	if got := consume(parts * 20); len(got) != parts*20 {
		t.Fatalf("first consumer: %d records", len(got))
	}
	if got := committed(t, tb.addr, group, topic, parts); !slices.Equal(got, []int64{20, 20, 20}) {
		t.Fatalf("committed: %v", got)
	}
	tb.restart()
	produce(t, tb.addr, topic, parts, 5)
	got := consume(parts * 5)
	for _, r := range got {
		if r.Offset < 20 {
			t.Fatalf("record %d/%d delivered again after commit", r.Partition, r.Offset)
		}
	}
}

func TestKcatBalancedConsumer(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (apt-get install kcat)")
	}
	tb := startGroupBroker(t)
	const topic, group, parts = "kcat-events", "kcat-group", 2
	createTopic(t, tb.addr, topic, parts, nil)
	produce(t, tb.addr, topic, parts, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// -G: balanced consumer (JoinGroup/SyncGroup/Heartbeat/OffsetCommit through librdkafka
	// 2.0's v0/v1/v2 gates); -e exits at the end of the partitions, committing on close.
	cmd := exec.CommandContext(ctx, kcat, "-b", tb.addr, "-G", group, "-o", "beginning", "-e", "-q", "-f", "%p:%o\n",
		"-X", "session.timeout.ms=6000", "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", topic)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	seen := map[string]int{}
	for _, line := range strings.Fields(string(out)) {
		seen[line]++
	}
	for p := 0; p < parts; p++ {
		for o := 0; o < 10; o++ {
			if n := seen[fmt.Sprintf("%d:%d", p, o)]; n != 1 {
				t.Fatalf("kcat delivered %d:%d %d times:\n%s\n%s", p, o, n, out, stderr.String())
			}
		}
	}
	if len(seen) != parts*10 {
		t.Fatalf("kcat output %d distinct records, want %d:\n%s", len(seen), parts*10, out)
	}
	if got := committed(t, tb.addr, group, topic, parts); !slices.Equal(got, []int64{10, 10}) {
		t.Fatalf("committed by kcat: %v", got)
	}
}

func TestMixedSaramaKgoRange(t *testing.T) {
	tb := startGroupBroker(t)
	const topic, group, parts = "mixed", "mixed-group", 6
	createTopic(t, tb.addr, topic, parts, nil)
	tr := newTracker()
	startSaramaMember(t, tb.addr, group, topic, "sarama", tr, saramaGroupConfig("sarama", sarama.V3_6_0_0))

	var mu sync.Mutex
	kgoOwned := map[int32]bool{}
	cl := newKgo(t, tb.addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				kgoOwned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				delete(kgoOwned, p)
			}
		}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if cl.PollFetches(ctx).IsClientClosed() {
				return
			}
		}
	}()
	wait.For(t, 20*time.Second, "range split between sarama and kgo", func() bool {
		mu.Lock()
		defer mu.Unlock()
		owners := tr.owners(parts)
		n := 0
		for p, o := range owners {
			if o == "sarama" == kgoOwned[int32(p)] {
				return false // both or neither
			}
			if o == "sarama" {
				n++
			}
		}
		return n == 3
	})
	tr.check(t)
	// Range gives each member a contiguous half.
	owners := tr.owners(parts)
	if !(slices.Equal(owners[:3], []string{"sarama", "sarama", "sarama"}) || slices.Equal(owners[3:], []string{"sarama", "sarama", "sarama"})) {
		t.Fatalf("range assignment not contiguous: %v", owners)
	}
}

// BenchmarkKgoGroupStabilize measures, with three real kgo members on a 6-partition topic,
// the time from starting the members until every partition is assigned, and from one member
// leaving until the other two own every partition. The broker's initial rebalance delay is
// 300 ms here (3 s by default) and counts in the first figure.
func BenchmarkKgoGroupStabilize(b *testing.B) {
	tb := startGroupBroker(b)
	const topic, parts = "stabilize", 6
	createTopic(b, tb.addr, topic, parts, nil)
	var startTotal, leaveTotal time.Duration
	for i := 0; i < b.N; i++ {
		group := fmt.Sprintf("stabilize-%d", i)
		var mu sync.Mutex
		owned := map[int]map[int32]bool{}
		total := func(members ...int) int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, m := range members {
				n += len(owned[m])
			}
			return n
		}
		start := time.Now()
		var clients []*kgo.Client
		ctx, cancel := context.WithCancel(context.Background())
		for m := 0; m < 3; m++ {
			owned[m] = map[int32]bool{}
			cl, err := kgo.NewClient(kgo.SeedBrokers(tb.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.Balancers(kgo.RangeBalancer()), kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(3*time.Second),
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
					mu.Lock()
					defer mu.Unlock()
					for _, p := range a[topic] {
						owned[m][p] = true
					}
				}),
				kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
					mu.Lock()
					defer mu.Unlock()
					for _, p := range r[topic] {
						delete(owned[m], p)
					}
				}))
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, cl)
			go func() {
				for ctx.Err() == nil {
					if cl.PollFetches(ctx).IsClientClosed() {
						return
					}
				}
			}()
		}
		wait.For(b, 30*time.Second, "3 members own all partitions", func() bool {
			return total(0, 1, 2) == parts && total(0) > 0 && total(1) > 0 && total(2) > 0
		})
		startTotal += time.Since(start)
		start = time.Now()
		clients[2].Close() // LeaveGroup
		wait.For(b, 30*time.Second, "2 members own all partitions", func() bool { return total(0, 1) == parts })
		leaveTotal += time.Since(start)
		cancel()
		clients[0].Close()
		clients[1].Close()
	}
	b.ReportMetric(float64(startTotal.Milliseconds())/float64(b.N), "start-ms")
	b.ReportMetric(float64(leaveTotal.Milliseconds())/float64(b.N), "after-leave-ms")
}
