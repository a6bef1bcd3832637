package acl

import (
	"cmp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// snapshot is an immutable set of bindings and its index, replaced as a whole
// on every change so that Authorize reads it without a lock.
type snapshot struct {
	bindings []Binding // sorted by compareBindings, no duplicates
	types    [kmsg.ACLResourceTypeUser + 1]typeIndex
}

// typeIndex holds the bindings of one resource type by pattern.
type typeIndex struct {
	literal    map[string][]entry // by name, the wildcard "*" included
	prefixed   map[string][]entry // by prefix
	prefixLens []int              // the distinct lengths of the prefixes, ascending
}

// entry is the part of a binding Authorize compares, beside the name it is
// indexed under.
type entry struct {
	principal string
	host      string
	op        kmsg.ACLOperation
	perm      kmsg.ACLPermissionType
	pos       int32 // in snapshot.bindings
}

func compareBindings(a, b Binding) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		cmp.Compare(a.PatternType, b.PatternType),
		strings.Compare(a.ResourceName, b.ResourceName),
		strings.Compare(a.Principal, b.Principal),
		strings.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// buildSnapshot indexes bs, which it sorts and deduplicates in place.
func buildSnapshot(bs []Binding) *snapshot {
	slices.SortFunc(bs, compareBindings)
	bs = slices.Compact(bs)
	s := &snapshot{bindings: bs}
	for i, b := range bs {
		ti := &s.types[b.ResourceType]
		e := entry{principal: b.Principal, host: b.Host, op: b.Operation, perm: b.Permission, pos: int32(i)}
		if b.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			if ti.prefixed == nil {
				ti.prefixed = make(map[string][]entry)
			}
			if _, ok := ti.prefixed[b.ResourceName]; !ok {
				if l, found := slices.BinarySearch(ti.prefixLens, len(b.ResourceName)); !found {
					ti.prefixLens = slices.Insert(ti.prefixLens, l, len(b.ResourceName))
				}
			}
			ti.prefixed[b.ResourceName] = append(ti.prefixed[b.ResourceName], e)
		} else {
			if ti.literal == nil {
				ti.literal = make(map[string][]entry)
			}
			ti.literal[b.ResourceName] = append(ti.literal[b.ResourceName], e)
		}
	}
	return s
}

// implies reports whether an ALLOW of granted allows op.
func implies(granted, op kmsg.ACLOperation) bool {
	if granted == op || granted == kmsg.ACLOperationAll {
		return true
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// denies reports whether a DENY of op2 denies op: DENY implies nothing.
func denies(denied, op kmsg.ACLOperation) bool {
	return denied == op || denied == kmsg.ACLOperationAll
}

// scan looks through es for entries applying to principal and host: deny is
// true at the first that denies op, allow tells whether one allows it.
func scan(es []entry, principal, host string, op kmsg.ACLOperation, allow bool) (deny, allowed bool) {
	for i := range es {
		e := &es[i]
		if e.principal != principal && e.principal != WildcardPrincipal {
			continue
		}
		if e.host != host && e.host != WildcardHost {
			continue
		}
		if e.perm == kmsg.ACLPermissionTypeDeny {
			if denies(e.op, op) {
				return true, allow
			}
		} else if !allow && implies(e.op, op) {
			allow = true
		}
	}
	return false, allow
}

// decide applies the bindings that match name: literal ones, the wildcard and
// every prefix of name.
func (ti *typeIndex) decide(principal, host string, op kmsg.ACLOperation, name string) bool {
	deny, allow := scan(ti.literal[name], principal, host, op, false)
	if deny {
		return false
	}
	if name != WildcardResource {
		if deny, allow = scan(ti.literal[WildcardResource], principal, host, op, allow); deny {
			return false
		}
	}
	for _, l := range ti.prefixLens {
		if l > len(name) {
			break
		}
		if deny, allow = scan(ti.prefixed[name[:l]], principal, host, op, allow); deny {
			return false
		}
	}
	return allow
}

// decideAny reports whether some resource of the type may be operated on: an
// ALLOW for it whose pattern no DENY covers.
func (ti *typeIndex) decideAny(principal, host string, op kmsg.ACLOperation) bool {
	applies := func(e *entry) bool {
		return (e.principal == principal || e.principal == WildcardPrincipal) &&
			(e.host == host || e.host == WildcardHost)
	}
	deniedLiteral := make(map[string]bool)
	var deniedPrefixes []string
	for name, es := range ti.literal {
		for i := range es {
			if e := &es[i]; e.perm == kmsg.ACLPermissionTypeDeny && applies(e) && denies(e.op, op) {
				if name == WildcardResource {
					return false
				}
				deniedLiteral[name] = true
			}
		}
	}
	for name, es := range ti.prefixed {
		for i := range es {
			if e := &es[i]; e.perm == kmsg.ACLPermissionTypeDeny && applies(e) && denies(e.op, op) {
				deniedPrefixes = append(deniedPrefixes, name)
			}
		}
	}
	coveredByPrefix := func(name string) bool {
		for _, p := range deniedPrefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	for name, es := range ti.literal {
		for i := range es {
			if e := &es[i]; e.perm == kmsg.ACLPermissionTypeAllow && applies(e) && implies(e.op, op) {
				if name == WildcardResource || (!deniedLiteral[name] && !coveredByPrefix(name)) {
					return true
				}
			}
		}
	}
	for name, es := range ti.prefixed {
		for i := range es {
			if e := &es[i]; e.perm == kmsg.ACLPermissionTypeAllow && applies(e) && implies(e.op, op) && !coveredByPrefix(name) {
				return true
			}
		}
	}
	return false
}
