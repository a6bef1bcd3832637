package acl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Names with a meaning of their own in bindings, as in Kafka.
const (
	// ClusterName is the name of the one cluster resource.
	ClusterName = "kafka-cluster"
	// WildcardResource, as the name of a literal binding, matches every resource
	// of the binding's type.
	WildcardResource = "*"
	// WildcardPrincipal matches every principal.
	WildcardPrincipal = "User:*"
	// WildcardHost matches every client address.
	WildcardHost = "*"
	// AnonymousPrincipal is the principal of a client that did not authenticate
	// (a PLAINTEXT or SSL listener without a client certificate).
	AnonymousPrincipal = "User:ANONYMOUS"
)

// MaxNameBytes bounds the length of a resource name and of a principal in a
// binding or a filter.
const MaxNameBytes = 1024

// Binding is one ACL: a resource pattern (type, name, pattern type) and an
// entry (principal, host, operation, permission). Its fields use Kafka's wire
// values.
type Binding struct {
	ResourceType kmsg.ACLResourceType        `json:"resource_type"`
	ResourceName string                      `json:"resource_name"`
	PatternType  kmsg.ACLResourcePatternType `json:"pattern_type"`
	Principal    string                      `json:"principal"`
	Host         string                      `json:"host"`
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// String formats b as Kafka's tools do.
func (b Binding) String() string {
	return fmt.Sprintf("(resource=%s:%s:%s, principal=%s, host=%s, operation=%s, permission=%s)",
		b.ResourceType, b.PatternType, b.ResourceName, b.Principal, b.Host, b.Operation, b.Permission)
}

// errInvalid marks a binding or filter that Kafka answers with INVALID_REQUEST.
var errInvalid = errors.New("invalid")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
}

// concreteResourceType reports whether t names resources (not UNKNOWN or ANY).
func concreteResourceType(t kmsg.ACLResourceType) bool {
	return t >= kmsg.ACLResourceTypeTopic && t <= kmsg.ACLResourceTypeUser
}

// concreteOperation reports whether op is an operation a binding may carry
// (ALL through DESCRIBE_TOKENS; not UNKNOWN or ANY).
func concreteOperation(op kmsg.ACLOperation) bool {
	return op >= kmsg.ACLOperationAll && op <= kmsg.ACLOperationDescribeTokens
}

// Normalize checks b as CreateAcls does and returns it with its host in
// canonical form. The error wraps a description fit for the client.
func Normalize(b Binding) (Binding, error) {
	if !concreteResourceType(b.ResourceType) {
		return b, invalidf("resource type %d is not a concrete resource type", b.ResourceType)
	}
	if b.PatternType != kmsg.ACLResourcePatternTypeLiteral && b.PatternType != kmsg.ACLResourcePatternTypePrefixed {
		return b, invalidf("pattern type %d is neither LITERAL nor PREFIXED", b.PatternType)
	}
	if b.ResourceName == "" {
		return b, invalidf("empty resource name")
	}
	if len(b.ResourceName) > MaxNameBytes {
		return b, invalidf("resource name longer than %d bytes", MaxNameBytes)
	}
	if b.ResourceType == kmsg.ACLResourceTypeCluster && b.ResourceName != ClusterName {
		return b, invalidf("the only valid name for the CLUSTER resource is %s", ClusterName)
	}
	if err := CheckPrincipal(b.Principal); err != nil {
		return b, err
	}
	host, err := canonicalHost(b.Host)
	if err != nil {
		return b, err
	}
	b.Host = host
	if !concreteOperation(b.Operation) {
		return b, invalidf("operation %d is not a concrete operation", b.Operation)
	}
	if b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny {
		return b, invalidf("permission %d is neither ALLOW nor DENY", b.Permission)
	}
	return b, nil
}

// CheckPrincipal checks that p has Kafka's form "Type:name", such as
// "User:alice" or the wildcard "User:*".
func CheckPrincipal(p string) error {
	if len(p) > MaxNameBytes {
		return invalidf("principal longer than %d bytes", MaxNameBytes)
	}
	typ, name, ok := strings.Cut(p, ":")
	if !ok || typ == "" || name == "" {
		return invalidf("principal %q is not of the form Type:name (User:alice)", p)
	}
	return nil
}

// canonicalHost returns "*" or the canonical text of an IP address.
func canonicalHost(h string) (string, error) {
	if h == WildcardHost {
		return h, nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil || a.Zone() != "" {
		return "", invalidf("host %q is neither * nor an IP address", h)
	}
	return a.Unmap().String(), nil
}

// HostOf returns the host string Authorize expects for a client at addr: the
// canonical text of its IP address (an IPv4 address mapped into IPv6 is given
// as IPv4), or "" if addr carries no IP address.
func HostOf(addr net.Addr) string {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	default:
		if addr == nil {
			return ""
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return ""
		}
		return ap.Addr().Unmap().WithZone("").String()
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ""
	}
	return a.Unmap().String()
}

// ParseSuperUsers parses the [acl] super_users ini value: principals separated
// by commas (or semicolons, as Kafka's super.users), blanks ignored.
func ParseSuperUsers(s string) ([]string, error) {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if err := CheckPrincipal(p); err != nil {
			return nil, fmt.Errorf("super_users: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}
