package acl

import (
	"net"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster

	literal  = kmsg.ACLResourcePatternTypeLiteral
	prefixed = kmsg.ACLResourcePatternTypePrefixed

	allow = kmsg.ACLPermissionTypeAllow
	deny  = kmsg.ACLPermissionTypeDeny

	opAll        = kmsg.ACLOperationAll
	opRead       = kmsg.ACLOperationRead
	opWrite      = kmsg.ACLOperationWrite
	opCreate     = kmsg.ACLOperationCreate
	opDelete     = kmsg.ACLOperationDelete
	opAlter      = kmsg.ACLOperationAlter
	opDescribe   = kmsg.ACLOperationDescribe
	opDescConfs  = kmsg.ACLOperationDescribeConfigs
	opAlterConfs = kmsg.ACLOperationAlterConfigs
	opIdemWrite  = kmsg.ACLOperationIdempotentWrite
)

// bind is a binding from any host.
func bind(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, name, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) Binding {
	return Binding{ResourceType: rt, PatternType: pt, ResourceName: name, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

func open(t testing.TB, cfg Config, bs ...Binding) *Authorizer {
	t.Helper()
	a, err := Open(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) > 0 {
		if err := a.Add(bs...); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

type check struct {
	principal, host string
	op              kmsg.ACLOperation
	rt              kmsg.ACLResourceType
	name            string
	want            bool
}

func TestAuthorizeSemantics(t *testing.T) {
	on := Config{Enabled: true, SuperUsers: []string{"User:admin"}}
	const ip = "10.0.0.1"
	for _, tc := range []struct {
		name   string
		cfg    Config
		bs     []Binding
		checks []check
	}{
		{"no ACL denies", on, nil, []check{
			{"User:bob", ip, opRead, topic, "logs", false},
			{"User:bob", ip, opDescribe, cluster, ClusterName, false},
		}},
		{"disabled allows all", Config{}, []Binding{bind(topic, literal, "logs", "User:bob", opAll, deny)}, []check{
			{"User:bob", ip, opRead, topic, "logs", true},
			{AnonymousPrincipal, ip, opAlter, cluster, ClusterName, true},
		}},
		{"super user bypasses deny", on, []Binding{bind(topic, literal, "*", "User:*", opAll, deny)}, []check{
			{"User:admin", ip, opDelete, topic, "logs", true},
			{"User:admin", ip, opAlter, cluster, ClusterName, true},
			{"User:bob", ip, opRead, topic, "logs", false},
		}},
		{"literal allow", on, []Binding{bind(topic, literal, "logs", "User:bob", opRead, allow)}, []check{
			{"User:bob", ip, opRead, topic, "logs", true},
			{"User:bob", ip, opWrite, topic, "logs", false},
			{"User:bob", ip, opRead, topic, "logs2", false},
			{"User:bob", ip, opRead, topic, "log", false},
			{"User:bob", ip, opRead, group, "logs", false},
			{"User:alice", ip, opRead, topic, "logs", false},
		}},
		{"deny beats allow", on, []Binding{
			bind(topic, literal, "*", "User:*", opAll, allow),
			bind(topic, literal, "secret", "User:bob", opWrite, deny),
		}, []check{
			{"User:bob", ip, opWrite, topic, "secret", false},
			{"User:bob", ip, opRead, topic, "secret", true},
			{"User:bob", ip, opWrite, topic, "other", true},
			{"User:alice", ip, opWrite, topic, "secret", true},
		}},
		{"deny all beats everything", on, []Binding{
			bind(topic, literal, "secret", "User:bob", opRead, allow),
			bind(topic, prefixed, "sec", "User:*", opAll, deny),
		}, []check{
			{"User:bob", ip, opRead, topic, "secret", false},
			{"User:bob", ip, opDescribe, topic, "secret", false},
		}},
		{"implied describe", on, []Binding{
			bind(topic, literal, "r", "User:bob", opRead, allow),
			bind(topic, literal, "w", "User:bob", opWrite, allow),
			bind(topic, literal, "d", "User:bob", opDelete, allow),
			bind(topic, literal, "a", "User:bob", opAlter, allow),
			bind(topic, literal, "c", "User:bob", opCreate, allow),
			bind(topic, literal, "ac", "User:bob", opAlterConfs, allow),
		}, []check{
			{"User:bob", ip, opDescribe, topic, "r", true},
			{"User:bob", ip, opDescribe, topic, "w", true},
			{"User:bob", ip, opDescribe, topic, "d", true},
			{"User:bob", ip, opDescribe, topic, "a", true},
			{"User:bob", ip, opDescribe, topic, "c", false},
			{"User:bob", ip, opDescConfs, topic, "ac", true},
			{"User:bob", ip, opDescribe, topic, "ac", false},
			{"User:bob", ip, opDescConfs, topic, "r", false},
			{"User:bob", ip, opRead, topic, "w", false},
		}},
		{"deny implies nothing", on, []Binding{
			bind(topic, literal, "logs", "User:bob", opRead, allow),
			bind(topic, literal, "logs", "User:bob", opDescribe, allow),
			bind(topic, literal, "logs", "User:bob", opRead, deny),
		}, []check{
			{"User:bob", ip, opRead, topic, "logs", false},
			{"User:bob", ip, opDescribe, topic, "logs", true},
		}},
		{"all matches every operation", on, []Binding{bind(group, literal, "g", "User:bob", opAll, allow)}, []check{
			{"User:bob", ip, opRead, group, "g", true},
			{"User:bob", ip, opDelete, group, "g", true},
			{"User:bob", ip, opDescribe, group, "g", true},
			{"User:bob", ip, opDescribe, group, "h", false},
		}},
		{"prefixed versus literal", on, []Binding{
			bind(topic, prefixed, "logs-", "User:bob", opRead, allow),
			bind(topic, literal, "app-", "User:bob", opRead, allow),
		}, []check{
			{"User:bob", ip, opRead, topic, "logs-web", true},
			{"User:bob", ip, opRead, topic, "logs-", true},
			{"User:bob", ip, opRead, topic, "logs", false},
			{"User:bob", ip, opRead, topic, "xlogs-web", false},
			{"User:bob", ip, opRead, topic, "app-web", false},
			{"User:bob", ip, opRead, topic, "app-", true},
		}},
		{"prefixed deny over literal allow", on, []Binding{
			bind(topic, literal, "secret", "User:bob", opWrite, allow),
			bind(topic, prefixed, "sec", "User:bob", opWrite, deny),
		}, []check{
			{"User:bob", ip, opWrite, topic, "secret", false},
			{"User:bob", ip, opDescribe, topic, "secret", true},
		}},
		{"wildcard resource", on, []Binding{bind(topic, literal, "*", "User:bob", opRead, allow)}, []check{
			{"User:bob", ip, opRead, topic, "anything", true},
			{"User:bob", ip, opRead, topic, "*", true},
			{"User:bob", ip, opRead, group, "anything", false},
		}},
		{"prefixed star is no wildcard", on, []Binding{bind(topic, prefixed, "*", "User:bob", opRead, allow)}, []check{
			{"User:bob", ip, opRead, topic, "anything", false},
			{"User:bob", ip, opRead, topic, "*x", true},
		}},
		{"wildcard principal", on, []Binding{bind(topic, literal, "logs", "User:*", opRead, allow)}, []check{
			{"User:bob", ip, opRead, topic, "logs", true},
			{AnonymousPrincipal, ip, opRead, topic, "logs", true},
		}},
		{"hosts", on, []Binding{
			{ResourceType: topic, PatternType: literal, ResourceName: "logs", Principal: "User:bob", Host: "10.0.0.1", Operation: opRead, Permission: allow},
			{ResourceType: topic, PatternType: literal, ResourceName: "logs", Principal: "User:bob", Host: "::ffff:10.0.0.9", Operation: opRead, Permission: deny},
			{ResourceType: topic, PatternType: literal, ResourceName: "v6", Principal: "User:bob", Host: "2001:DB8::1", Operation: opRead, Permission: allow},
		}, []check{
			{"User:bob", "10.0.0.1", opRead, topic, "logs", true},
			{"User:bob", "10.0.0.2", opRead, topic, "logs", false},
			{"User:bob", "10.0.0.9", opRead, topic, "logs", false},
			{"User:bob", "2001:db8::1", opRead, topic, "v6", true},
		}},
		{"cluster operations", on, []Binding{
			bind(cluster, literal, ClusterName, "User:agent", opIdemWrite, allow),
			bind(cluster, literal, ClusterName, "User:ops", opAlterConfs, allow),
		}, []check{
			{"User:agent", ip, opIdemWrite, cluster, ClusterName, true},
			{"User:agent", ip, opAlter, cluster, ClusterName, false},
			{"User:agent", ip, opDescribe, cluster, ClusterName, false},
			{"User:ops", ip, opDescConfs, cluster, ClusterName, true},
		}},
		{"unknown resource type", on, []Binding{bind(topic, literal, "*", "User:*", opAll, allow)}, []check{
			{"User:bob", ip, opRead, kmsg.ACLResourceTypeAny, "x", false},
			{"User:bob", ip, opRead, kmsg.ACLResourceType(99), "x", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := open(t, tc.cfg, tc.bs...)
			for _, c := range tc.checks {
				if got := a.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
					t.Errorf("Authorize(%s, %s, %s, %s, %q) = %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
				}
			}
		})
	}
}

func TestNilAuthorizerAllows(t *testing.T) {
	var a *Authorizer
	if a.Enabled() || !a.Authorize("User:x", "1.2.3.4", opRead, topic, "t") || !a.AuthorizeAny("User:x", "", opWrite, topic) {
		t.Fatal("nil authorizer must be disabled and allow")
	}
	if got := a.FilterDescribable("User:x", "", []string{"a"}); len(got) != 1 {
		t.Fatal(got)
	}
}

func TestAuthorizeAny(t *testing.T) {
	on := Config{Enabled: true}
	for _, tc := range []struct {
		name string
		bs   []Binding
		want bool
	}{
		{"none", nil, false},
		{"literal allow", []Binding{bind(topic, literal, "logs", "User:bob", opWrite, allow)}, true},
		{"all allow", []Binding{bind(topic, literal, "logs", "User:bob", opAll, allow)}, true},
		{"read is not write", []Binding{bind(topic, literal, "logs", "User:bob", opRead, allow)}, false},
		{"other principal", []Binding{bind(topic, literal, "logs", "User:alice", opWrite, allow)}, false},
		{"literal denied", []Binding{
			bind(topic, literal, "logs", "User:bob", opWrite, allow),
			bind(topic, literal, "logs", "User:bob", opWrite, deny),
		}, false},
		{"covered by denied prefix", []Binding{
			bind(topic, prefixed, "logs-a", "User:bob", opWrite, allow),
			bind(topic, prefixed, "logs", "User:bob", opWrite, deny),
		}, false},
		{"wildcard denied", []Binding{
			bind(topic, literal, "logs", "User:bob", opWrite, allow),
			bind(topic, literal, "*", "User:*", opWrite, deny),
		}, false},
		{"one of two denied", []Binding{
			bind(topic, literal, "logs", "User:bob", opWrite, allow),
			bind(topic, literal, "metrics", "User:bob", opWrite, allow),
			bind(topic, literal, "logs", "User:bob", opWrite, deny),
		}, true},
		{"wildcard allowed despite literal deny", []Binding{
			bind(topic, literal, "*", "User:bob", opWrite, allow),
			bind(topic, literal, "logs", "User:bob", opWrite, deny),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := open(t, on, tc.bs...)
			if got := a.AuthorizeAny("User:bob", "10.0.0.1", opWrite, topic); got != tc.want {
				t.Fatalf("AuthorizeAny = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterDescribable(t *testing.T) {
	a := open(t, Config{Enabled: true, SuperUsers: []string{"User:admin"}},
		bind(topic, prefixed, "logs-", "User:transfer", opRead, allow),
		bind(topic, literal, "audit", "User:transfer", opDescribe, allow),
		bind(topic, literal, "logs-secret", "User:transfer", opDescribe, deny),
	)
	names := []string{"logs-web", "audit", "logs-secret", "other", "logs-db"}
	if got, want := a.FilterDescribable("User:transfer", "127.0.0.1", names), []string{"logs-web", "audit", "logs-db"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := a.FilterDescribable("User:admin", "127.0.0.1", names); !slices.Equal(got, names) {
		t.Fatalf("super user got %v", got)
	}
	if got := a.FilterDescribable("User:nobody", "127.0.0.1", names); len(got) != 0 {
		t.Fatalf("nobody got %v", got)
	}
	if !slices.Equal(names, []string{"logs-web", "audit", "logs-secret", "other", "logs-db"}) {
		t.Fatal("input modified")
	}
}

func TestDeniedErrorCode(t *testing.T) {
	for rt, want := range map[kmsg.ACLResourceType]*kerr.Error{
		topic:                               kerr.TopicAuthorizationFailed,
		group:                               kerr.GroupAuthorizationFailed,
		cluster:                             kerr.ClusterAuthorizationFailed,
		kmsg.ACLResourceTypeTransactionalId: kerr.TransactionalIDAuthorizationFailed,
	} {
		if got := DeniedErrorCode(rt); got != want.Code {
			t.Errorf("%s: %d, want %d", rt, got, want.Code)
		}
	}
}

func TestParseSuperUsers(t *testing.T) {
	got, err := ParseSuperUsers(" User:admin, User:ops;User:root ,")
	if err != nil || !slices.Equal(got, []string{"User:admin", "User:ops", "User:root"}) {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := ParseSuperUsers(""); err != nil || len(got) != 0 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"admin", "User:", ":admin"} {
		if _, err := ParseSuperUsers(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Open(t.TempDir(), Config{SuperUsers: []string{"admin"}}); err == nil {
		t.Fatal("Open accepted a bad super user")
	}
}

func TestHostOf(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5}, "10.1.2.3"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 5}, "10.1.2.3"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5, Zone: "eth0"}, "2001:db8::1"},
		{&net.UnixAddr{Name: "/x", Net: "unix"}, ""},
		{nil, ""},
	} {
		if got := HostOf(tc.addr); got != tc.want {
			t.Errorf("HostOf(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestNormalizeRefuses(t *testing.T) {
	good := bind(topic, literal, "logs", "User:bob", opRead, allow)
	for name, mod := range map[string]func(*Binding){
		"resource any":      func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeAny },
		"resource unknown":  func(b *Binding) { b.ResourceType = 42 },
		"pattern match":     func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeMatch },
		"empty name":        func(b *Binding) { b.ResourceName = "" },
		"long name":         func(b *Binding) { b.ResourceName = string(make([]byte, MaxNameBytes+1)) },
		"cluster name":      func(b *Binding) { b.ResourceType = cluster; b.ResourceName = "c" },
		"principal no type": func(b *Binding) { b.Principal = "bob" },
		"host name":         func(b *Binding) { b.Host = "example.com" },
		"host empty":        func(b *Binding) { b.Host = "" },
		"operation any":     func(b *Binding) { b.Operation = kmsg.ACLOperationAny },
		"operation 15":      func(b *Binding) { b.Operation = 15 },
		"permission any":    func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny },
	} {
		b := good
		mod(&b)
		if _, err := Normalize(b); err == nil {
			t.Errorf("%s: accepted %s", name, b)
		}
	}
	if _, err := Normalize(good); err != nil {
		t.Fatal(err)
	}
}
