package acl

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MaxFiltersPerRequest bounds the filters of one DeleteAcls request, and
// MaxScanFiltersPerRequest those among them that name no resource type or
// name, each of which costs a pass over every binding (a named one is looked
// up in the index). The filters beyond are answered INVALID_REQUEST.
const (
	MaxFiltersPerRequest     = 1000
	MaxScanFiltersPerRequest = 64
)

// APIKeys returns the versions of CreateAcls (30), DescribeAcls (29) and
// DeleteAcls (31) that the handlers answer, for ApiVersions.
func APIKeys() []kmsg.ApiVersionsResponseApiKey {
	var out []kmsg.ApiVersionsResponseApiKey
	for _, r := range []kmsg.Request{new(kmsg.DescribeACLsRequest), new(kmsg.CreateACLsRequest), new(kmsg.DeleteACLsRequest)} {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = r.Key(), 0, r.MaxVersion()
		out = append(out, k)
	}
	return out
}

// ClusterOperation is the operation on the cluster a caller needs for the ACL
// request with this key: ALTER for CreateAcls and DeleteAcls, DESCRIBE for
// DescribeAcls (UNKNOWN for other keys).
func ClusterOperation(key int16) kmsg.ACLOperation {
	switch key {
	case 29:
		return kmsg.ACLOperationDescribe
	case 30, 31:
		return kmsg.ACLOperationAlter
	}
	return kmsg.ACLOperationUnknown
}

// Handle answers a CreateAcls, DescribeAcls or DeleteAcls request; ok is false
// for any other request. The caller checks first that the client may perform
// ClusterOperation(req.Key()) on the cluster.
func (a *Authorizer) Handle(req kmsg.Request) (resp kmsg.Response, ok bool) {
	switch r := req.(type) {
	case *kmsg.CreateACLsRequest:
		return a.CreateACLs(r), true
	case *kmsg.DescribeACLsRequest:
		return a.DescribeACLs(r), true
	case *kmsg.DeleteACLsRequest:
		return a.DeleteACLs(r), true
	}
	return nil, false
}

var msgDisabled = "authorization is disabled on this broker ([acl] enabled = false)"

// CreateACLs stores the requested bindings and answers at the request's
// version, one result per creation: INVALID_REQUEST for an invalid one,
// POLICY_VIOLATION beyond the limit of bindings, SECURITY_DISABLED when
// authorization is off. Creating a stored binding again succeeds.
func (a *Authorizer) CreateACLs(req *kmsg.CreateACLsRequest) *kmsg.CreateACLsResponse {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	for i := range resp.Results {
		resp.Results[i].Default()
	}
	if !a.Enabled() {
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.SecurityDisabled.Code, &msgDisabled
		}
		return resp
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.snap.Load()
	have := make(map[Binding]struct{}, len(cur.bindings)+len(req.Creations))
	for _, b := range cur.bindings {
		have[b] = struct{}{}
	}
	next := slices.Clip(cur.bindings)
	var added []int
	for i, c := range req.Creations {
		r := &resp.Results[i]
		b, err := Normalize(Binding{
			ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType,
		})
		if err != nil {
			a.m.refused.WithLabelValues("invalid").Inc()
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
			continue
		}
		if _, ok := have[b]; ok {
			continue
		}
		if len(next) >= a.max {
			a.m.refused.WithLabelValues("max_bindings").Inc()
			r.ErrorCode = kerr.PolicyViolation.Code
			r.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("the broker holds its limit of %d ACL bindings", a.max))
			continue
		}
		have[b] = struct{}{}
		next = append(next, b)
		added = append(added, i)
	}
	if err := a.commit(cur, next); err != nil {
		for _, i := range added {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())
		}
	}
	return resp
}

// DescribeACLs answers the bindings matching the request's filter, grouped by
// resource pattern, at the request's version.
func (a *Authorizer) DescribeACLs(req *kmsg.DescribeACLsRequest) *kmsg.DescribeACLsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !a.Enabled() {
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, &msgDisabled
		return resp
	}
	f, err := newFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if err != nil {
		a.m.refused.WithLabelValues("invalid").Inc()
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
		return resp
	}
	s := a.snap.Load()
	for _, pos := range s.match(&f) {
		b := &s.bindings[pos]
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != b.ResourceType ||
			resp.Resources[n-1].ResourceName != b.ResourceName || resp.Resources[n-1].ResourcePatternType != b.PatternType {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			resp.Resources = append(resp.Resources, r)
			n++
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, e)
	}
	return resp
}

// DeleteACLs deletes the bindings matching each filter and answers, per
// filter, those it deleted (a binding matching several filters is reported
// under the first), at the request's version.
func (a *Authorizer) DeleteACLs(req *kmsg.DeleteACLsRequest) *kmsg.DeleteACLsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i := range resp.Results {
		resp.Results[i].Default()
	}
	if !a.Enabled() {
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.SecurityDisabled.Code, &msgDisabled
		}
		return resp
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.snap.Load()
	deleted := make([]bool, len(cur.bindings))
	ndeleted, scans := 0, 0
	for i, rf := range req.Filters {
		r := &resp.Results[i]
		if i >= MaxFiltersPerRequest {
			a.m.refused.WithLabelValues("max_filters").Inc()
			r.ErrorCode = kerr.InvalidRequest.Code
			r.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("more than %d filters in one request", MaxFiltersPerRequest))
			continue
		}
		f, err := newFilter(rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType)
		if err != nil {
			a.m.refused.WithLabelValues("invalid").Inc()
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
			continue
		}
		if f.scans() {
			if scans++; scans > MaxScanFiltersPerRequest {
				a.m.refused.WithLabelValues("max_filters").Inc()
				r.ErrorCode = kerr.InvalidRequest.Code
				r.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("more than %d filters without a resource type and name in one request", MaxScanFiltersPerRequest))
				continue
			}
		}
		for _, pos := range cur.match(&f) {
			if deleted[pos] {
				continue
			}
			deleted[pos] = true
			ndeleted++
			b := &cur.bindings[pos]
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
			r.MatchingACLs = append(r.MatchingACLs, m)
		}
	}
	if ndeleted == 0 {
		return resp
	}
	next := make([]Binding, 0, len(cur.bindings)-ndeleted)
	for pos, b := range cur.bindings {
		if !deleted[pos] {
			next = append(next, b)
		}
	}
	if err := a.commit(cur, next); err != nil {
		for i := range resp.Results {
			if r := &resp.Results[i]; len(r.MatchingACLs) > 0 {
				r.ErrorCode, r.ErrorMessage, r.MatchingACLs = kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error()), nil
			}
		}
	}
	return resp
}

// filter is a DescribeAcls or DeleteAcls filter; nil fields and ANY match
// everything.
type filter struct {
	rt        kmsg.ACLResourceType
	name      *string
	pattern   kmsg.ACLResourcePatternType
	principal *string
	host      *string
	op        kmsg.ACLOperation
	perm      kmsg.ACLPermissionType
}

func newFilter(rt kmsg.ACLResourceType, name *string, pattern kmsg.ACLResourcePatternType, principal, host *string,
	op kmsg.ACLOperation, perm kmsg.ACLPermissionType,
) (filter, error) {
	f := filter{rt: rt, name: name, pattern: pattern, principal: principal, host: host, op: op, perm: perm}
	switch {
	case rt != kmsg.ACLResourceTypeAny && !concreteResourceType(rt):
		return f, invalidf("unknown resource type %d", rt)
	case pattern < kmsg.ACLResourcePatternTypeAny || pattern > kmsg.ACLResourcePatternTypePrefixed:
		return f, invalidf("unknown pattern type %d", pattern)
	case op != kmsg.ACLOperationAny && !concreteOperation(op):
		return f, invalidf("unknown operation %d", op)
	case perm < kmsg.ACLPermissionTypeAny || perm > kmsg.ACLPermissionTypeAllow:
		return f, invalidf("unknown permission type %d", perm)
	case name != nil && len(*name) > MaxNameBytes:
		return f, invalidf("resource name longer than %d bytes", MaxNameBytes)
	case principal != nil && len(*principal) > MaxNameBytes:
		return f, invalidf("principal longer than %d bytes", MaxNameBytes)
	case host != nil && len(*host) > MaxNameBytes:
		return f, invalidf("host longer than %d bytes", MaxNameBytes)
	}
	if host != nil {
		if h, err := canonicalHost(*host); err == nil {
			f.host = &h
		}
	}
	return f, nil
}

// matches applies Kafka's filter semantics to b: for the resource, ANY
// matches the name under any pattern type, MATCH every binding that applies
// to a resource of that name (literal, wildcard, prefixes), LITERAL and
// PREFIXED that exact pattern; principal, host, operation and permission match
// exactly unless nil or ANY.
func (f *filter) matches(b *Binding) bool {
	if f.rt != kmsg.ACLResourceTypeAny && f.rt != b.ResourceType {
		return false
	}
	if f.principal != nil && *f.principal != b.Principal {
		return false
	}
	if f.host != nil && *f.host != b.Host {
		return false
	}
	if f.op != kmsg.ACLOperationAny && f.op != b.Operation {
		return false
	}
	if f.perm != kmsg.ACLPermissionTypeAny && f.perm != b.Permission {
		return false
	}
	switch f.pattern {
	case kmsg.ACLResourcePatternTypeAny:
		return f.name == nil || *f.name == b.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.name == nil {
			return true
		}
		if b.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			return len(*f.name) >= len(b.ResourceName) && (*f.name)[:len(b.ResourceName)] == b.ResourceName
		}
		return *f.name == b.ResourceName || b.ResourceName == WildcardResource
	default:
		return f.pattern == b.PatternType && (f.name == nil || *f.name == b.ResourceName)
	}
}

// scans reports whether f is matched by a pass over all bindings rather than
// through the index.
func (f *filter) scans() bool { return f.rt == kmsg.ACLResourceTypeAny || f.name == nil }

// match returns, in order, the positions of the bindings f matches: from the
// index when f names a resource type and name, else by a pass over all.
func (s *snapshot) match(f *filter) []int32 {
	var out []int32
	if f.scans() {
		for i := range s.bindings {
			if f.matches(&s.bindings[i]) {
				out = append(out, int32(i))
			}
		}
		return out
	}
	ti := &s.types[f.rt]
	name := *f.name
	add := func(es []entry) {
		for _, e := range es {
			if f.matches(&s.bindings[e.pos]) {
				out = append(out, e.pos)
			}
		}
	}
	if f.pattern != kmsg.ACLResourcePatternTypePrefixed {
		add(ti.literal[name])
	}
	if f.pattern == kmsg.ACLResourcePatternTypeMatch && name != WildcardResource {
		add(ti.literal[WildcardResource])
	}
	switch f.pattern {
	case kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypePrefixed:
		add(ti.prefixed[name])
	case kmsg.ACLResourcePatternTypeMatch:
		for _, l := range ti.prefixLens {
			if l > len(name) {
				break
			}
			add(ti.prefixed[name[:l]])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
