package acl

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FileName is the file, in the broker's data directory, that holds the bindings.
const FileName = "acls.json"

// DefaultMaxBindings is Config.MaxBindings when it is zero.
const DefaultMaxBindings = 100_000

// Config configures an Authorizer.
type Config struct {
	// Enabled turns authorization on ([acl] enabled). When false every
	// request is allowed and the ACL requests answer SECURITY_DISABLED, as
	// Kafka does without an authorizer.
	Enabled bool
	// SuperUsers are principals allowed everything ([acl] super_users; see
	// ParseSuperUsers).
	SuperUsers []string
	// MaxBindings bounds the number of stored bindings, at load and when
	// creating (0 = DefaultMaxBindings).
	MaxBindings int
	// Registerer, when not nil, receives the metrics.
	Registerer prometheus.Registerer
}

// Authorizer decides, from the stored bindings, what each principal may do, and
// manages the bindings. It is safe for concurrent use; Authorize takes no lock.
// A nil *Authorizer is disabled: it allows everything.
type Authorizer struct {
	enabled bool
	super   map[string]struct{}
	max     int
	path    string

	mu   sync.Mutex // serializes changes and writes of the file
	snap atomic.Pointer[snapshot]

	m metrics
}

type metrics struct {
	denied   [kmsg.ACLResourceTypeUser + 1]prometheus.Counter
	deniedV  *prometheus.CounterVec
	refused  *prometheus.CounterVec
	bindings prometheus.Gauge
}

func newMetrics() metrics {
	m := metrics{
		deniedV: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_acl_denied_total",
			Help: "Authorizations denied, by resource type.",
		}, []string{"resource_type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_broker_acl_refused_total",
			Help: "ACL bindings or filters refused by a limit or as invalid, by reason.",
		}, []string{"reason"}),
		bindings: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "logpipe_broker_acl_bindings",
			Help: "Stored ACL bindings.",
		}),
	}
	for t := range m.denied {
		m.denied[t] = m.deniedV.WithLabelValues(resourceLabel(kmsg.ACLResourceType(t)))
	}
	return m
}

func resourceLabel(t kmsg.ACLResourceType) string {
	if concreteResourceType(t) {
		return t.String()
	}
	return "UNKNOWN"
}

// Open loads the bindings stored in dir (none if the file does not exist yet)
// and returns an Authorizer configured by cfg. The file is read even when
// authorization is disabled, so that a corrupt file is reported at start.
func Open(dir string, cfg Config) (*Authorizer, error) {
	a := &Authorizer{
		enabled: cfg.Enabled,
		super:   make(map[string]struct{}, len(cfg.SuperUsers)),
		max:     cfg.MaxBindings,
		path:    filepath.Join(dir, FileName),
		m:       newMetrics(),
	}
	if a.max <= 0 {
		a.max = DefaultMaxBindings
	}
	for _, p := range cfg.SuperUsers {
		if err := CheckPrincipal(p); err != nil {
			return nil, fmt.Errorf("acl super user: %w", err)
		}
		a.super[p] = struct{}{}
	}
	bs, err := loadFile(a.path, a.max)
	if err != nil {
		return nil, err
	}
	a.publish(bs)
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{a.m.deniedV, a.m.refused, a.m.bindings} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("acl metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Enabled reports whether authorization is on.
func (a *Authorizer) Enabled() bool { return a != nil && a.enabled }

// IsSuperUser reports whether principal is one of the configured super users.
func (a *Authorizer) IsSuperUser(principal string) bool {
	if a == nil {
		return false
	}
	_, ok := a.super[principal]
	return ok
}

// Authorize reports whether principal, connected from host (see HostOf), may
// perform op on the resource of type rt named name, with Kafka's semantics:
// super users may do everything; a matching DENY beats any ALLOW; an ALLOW of
// READ, WRITE, DELETE or ALTER implies DESCRIBE and one of ALTER_CONFIGS
// implies DESCRIBE_CONFIGS; ALL matches every operation; principal User:*,
// host * and the literal resource name * are wildcards; a PREFIXED binding
// matches the names that start with its name; with no matching ALLOW the
// answer is no. Everything is allowed when authorization is disabled.
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if !a.Enabled() {
		return true
	}
	if _, ok := a.super[principal]; ok {
		return true
	}
	ok := false
	if concreteResourceType(rt) {
		ok = a.snap.Load().types[rt].decide(principal, host, op, name)
	}
	if !ok {
		a.m.denied[resourceTypeIndex(rt)].Inc()
	}
	return ok
}

func resourceTypeIndex(rt kmsg.ACLResourceType) int {
	if concreteResourceType(rt) {
		return int(rt)
	}
	return 0
}

// AuthorizeAny reports whether principal may perform op on at least one
// resource of type rt: whether it holds an ALLOW binding for op of that type
// that no DENY binding covers entirely. Kafka uses this for an idempotent
// producer's InitProducerId, allowed with IDEMPOTENT_WRITE on the cluster or
// WRITE on any topic.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if !a.Enabled() {
		return true
	}
	if _, ok := a.super[principal]; ok {
		return true
	}
	ok := false
	if concreteResourceType(rt) {
		ok = a.snap.Load().types[rt].decideAny(principal, host, op)
	}
	if !ok {
		a.m.denied[resourceTypeIndex(rt)].Inc()
	}
	return ok
}

// FilterDescribable returns the topics of names that principal, from host,
// may DESCRIBE: what Metadata lists. It returns names itself when all are
// allowed, and otherwise a new slice.
func (a *Authorizer) FilterDescribable(principal, host string, names []string) []string {
	if !a.Enabled() || a.IsSuperUser(principal) {
		return names
	}
	s := a.snap.Load()
	ti := &s.types[kmsg.ACLResourceTypeTopic]
	for i, n := range names {
		if !ti.decide(principal, host, kmsg.ACLOperationDescribe, n) {
			out := slices.Clone(names[:i])
			for _, n := range names[i+1:] {
				if ti.decide(principal, host, kmsg.ACLOperationDescribe, n) {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return names
}

// DeniedErrorCode is the Kafka error code answered for a denied operation on a
// resource of type rt: TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, DELEGATION_TOKEN_AUTHORIZATION_FAILED
// or CLUSTER_AUTHORIZATION_FAILED (for the cluster and anything else).
func DeniedErrorCode(rt kmsg.ACLResourceType) int16 {
	switch rt {
	case kmsg.ACLResourceTypeTopic:
		return kerr.TopicAuthorizationFailed.Code
	case kmsg.ACLResourceTypeGroup:
		return kerr.GroupAuthorizationFailed.Code
	case kmsg.ACLResourceTypeTransactionalId:
		return kerr.TransactionalIDAuthorizationFailed.Code
	case kmsg.ACLResourceTypeDelegationToken:
		return kerr.DelegationTokenAuthorizationFailed.Code
	default:
		return kerr.ClusterAuthorizationFailed.Code
	}
}

// Bindings returns a copy of the stored bindings, in a stable order.
func (a *Authorizer) Bindings() []Binding {
	return slices.Clone(a.snap.Load().bindings)
}

// Add stores bindings (each checked by Normalize; already stored ones are
// ignored), as CreateAcls does, for tools that bootstrap a broker's first
// ACLs.
func (a *Authorizer) Add(bindings ...Binding) error {
	norm := make([]Binding, len(bindings))
	for i, b := range bindings {
		nb, err := Normalize(b)
		if err != nil {
			return fmt.Errorf("acl %s: %w", b, err)
		}
		norm[i] = nb
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.snap.Load()
	next := append(slices.Clip(cur.bindings), norm...)
	next = slices.Compact(slices.SortedFunc(slices.Values(next), compareBindings))
	if len(next) > a.max {
		a.m.refused.WithLabelValues("max_bindings").Inc()
		return fmt.Errorf("acl: %d bindings would exceed the limit of %d", len(next), a.max)
	}
	return a.commit(cur, next)
}

// commit writes next to the file and publishes it. a.mu is held.
func (a *Authorizer) commit(cur *snapshot, next []Binding) error {
	if len(next) == len(cur.bindings) && slices.Equal(next, cur.bindings) {
		return nil
	}
	if err := saveFile(a.path, next); err != nil {
		return err
	}
	a.publish(next)
	return nil
}

// publish makes bs, sorted and without duplicates, what Authorize sees.
func (a *Authorizer) publish(bs []Binding) {
	a.snap.Store(buildSnapshot(bs))
	a.m.bindings.Set(float64(len(bs)))
}
