package acl

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip encodes req at version as a client would, decodes it as the
// server does, handles it and returns the response decoded by a client at the
// same version.
func roundTrip(t *testing.T, a *Authorizer, req kmsg.Request, version int16) kmsg.Response {
	t.Helper()
	req.SetVersion(version)
	wire := req.AppendTo(nil)
	got := kmsg.RequestForKey(req.Key())
	got.SetVersion(version)
	if err := got.ReadFrom(wire); err != nil {
		t.Fatalf("decode request v%d: %v", version, err)
	}
	resp, ok := a.Handle(got)
	if !ok {
		t.Fatalf("key %d not handled", req.Key())
	}
	if resp.GetVersion() != version {
		t.Fatalf("response at v%d to a v%d request", resp.GetVersion(), version)
	}
	out := kmsg.ResponseForKey(req.Key())
	out.SetVersion(version)
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("decode response v%d: %v", version, err)
	}
	return out
}

func creation(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, name, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kmsg.CreateACLsRequestCreation {
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourcePatternType, c.ResourceName = rt, pt, name
	c.Principal, c.Host, c.Operation, c.PermissionType = principal, host, op, perm
	return c
}

func describeFilter(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) *kmsg.DescribeACLsRequest {
	r := kmsg.NewPtrDescribeACLsRequest()
	r.ResourceType, r.ResourceName, r.ResourcePatternType = rt, name, pt
	r.Principal, r.Host, r.Operation, r.PermissionType = principal, host, op, perm
	return r
}

// described flattens a DescribeAcls response into bindings.
func described(t *testing.T, r *kmsg.DescribeACLsResponse) []Binding {
	t.Helper()
	if r.ErrorCode != 0 {
		t.Fatalf("describe: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	var out []Binding
	for _, res := range r.Resources {
		for _, e := range res.ACLs {
			out = append(out, Binding{res.ResourceType, res.ResourceName, res.ResourcePatternType, e.Principal, e.Host, e.Operation, e.PermissionType})
		}
	}
	return out
}

var any_ = kmsg.ACLResourcePatternTypeAny

func sp(s string) *string { return &s }

// seed creates the bindings every handler test starts from.
func seed(t *testing.T, a *Authorizer, version int16) []Binding {
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = []kmsg.CreateACLsRequestCreation{
		creation(topic, literal, "logs", "User:agent", "*", opWrite, allow),
		creation(topic, literal, "logs", "User:transfer", "*", opRead, allow),
		creation(topic, literal, "*", "User:ops", "*", opDescribe, allow),
		creation(group, literal, "transfer", "User:transfer", "*", opRead, allow),
		creation(cluster, literal, ClusterName, "User:agent", "*", opIdemWrite, allow),
		creation(topic, literal, "logs", "User:agent", "10.0.0.9", opWrite, deny),
	}
	if version >= 1 {
		req.Creations = append(req.Creations, creation(topic, prefixed, "lo", "User:transfer", "*", opRead, allow))
	}
	resp := roundTrip(t, a, req, version).(*kmsg.CreateACLsResponse)
	if len(resp.Results) != len(req.Creations) {
		t.Fatalf("%d results for %d creations", len(resp.Results), len(req.Creations))
	}
	var bs []Binding
	for i, r := range resp.Results {
		if r.ErrorCode != 0 {
			t.Fatalf("creation %d: %v %v", i, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		c := req.Creations[i]
		bs = append(bs, Binding{c.ResourceType, c.ResourceName, c.ResourcePatternType, c.Principal, c.Host, c.Operation, c.PermissionType})
	}
	return bs
}

func TestHandlersAtEveryVersion(t *testing.T) {
	for v := int16(0); v <= new(kmsg.CreateACLsRequest).MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			a := open(t, Config{Enabled: true})
			all := seed(t, a, v)
			if !a.Authorize("User:agent", "10.0.0.1", opWrite, topic, "logs") || a.Authorize("User:agent", "10.0.0.9", opWrite, topic, "logs") {
				t.Fatal("created bindings not applied")
			}
			// Creating them again succeeds and stores nothing new.
			seed(t, a, v)
			if n := len(a.Bindings()); n != len(all) {
				t.Fatalf("%d bindings after creating twice, want %d", n, len(all))
			}

			describe := func(r *kmsg.DescribeACLsRequest) []Binding {
				return described(t, roundTrip(t, a, r, v).(*kmsg.DescribeACLsResponse))
			}
			// v0 filters are LITERAL: it cannot express ANY or MATCH.
			if got := describe(describeFilter(kmsg.ACLResourceTypeAny, nil, literal, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)); len(got) != 6 {
				t.Fatalf("all literal: %v", got)
			}
			if got := describe(describeFilter(topic, sp("logs"), literal, sp("User:agent"), nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)); len(got) != 2 {
				t.Fatalf("agent on logs: %v", got)
			}
			if got := describe(describeFilter(topic, sp("logs"), literal, nil, sp("10.0.0.9"), kmsg.ACLOperationAny, deny)); len(got) != 1 || got[0].Permission != deny {
				t.Fatalf("deny from host: %v", got)
			}
			if got := describe(describeFilter(group, nil, literal, nil, nil, opRead, allow)); len(got) != 1 || got[0].ResourceName != "transfer" {
				t.Fatalf("groups: %v", got)
			}
			if v >= 1 {
				if got := describe(describeFilter(kmsg.ACLResourceTypeAny, nil, any_, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)); len(got) != len(all) {
					t.Fatalf("any: %d, want %d", len(got), len(all))
				}
				// MATCH: every binding that applies to topic "logs": literal,
				// wildcard and the prefix "lo".
				got := describe(describeFilter(topic, sp("logs"), kmsg.ACLResourcePatternTypeMatch, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny))
				if len(got) != 5 {
					t.Fatalf("match logs: %v", got)
				}
				// ANY with a name: that name under any pattern type.
				if got := describe(describeFilter(topic, sp("lo"), any_, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)); len(got) != 1 || got[0].PatternType != prefixed {
					t.Fatalf("any lo: %v", got)
				}
				if got := describe(describeFilter(topic, sp("logs"), prefixed, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)); len(got) != 0 {
					t.Fatalf("prefixed logs: %v", got)
				}
				if got := describe(describeFilter(topic, nil, kmsg.ACLResourcePatternTypeMatch, sp("User:ops"), nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)); len(got) != 1 {
					t.Fatalf("match without a name: %v", got)
				}
			}
			// Unknown enums in a filter: INVALID_REQUEST.
			bad := describeFilter(kmsg.ACLResourceType(9), nil, literal, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)
			if r := roundTrip(t, a, bad, v).(*kmsg.DescribeACLsResponse); r.ErrorCode != kerr.InvalidRequest.Code {
				t.Fatalf("unknown resource type: %d", r.ErrorCode)
			}

			// Delete: a filter per kind, one matching nothing, one invalid.
			del := kmsg.NewPtrDeleteACLsRequest()
			f := func(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kmsg.DeleteACLsRequestFilter {
				d := kmsg.NewDeleteACLsRequestFilter()
				d.ResourceType, d.ResourceName, d.ResourcePatternType, d.Principal, d.Operation, d.PermissionType = rt, name, pt, principal, op, perm
				return d
			}
			del.Filters = []kmsg.DeleteACLsRequestFilter{
				f(topic, sp("logs"), literal, sp("User:agent"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny),
				f(topic, sp("logs"), literal, sp("User:agent"), opWrite, allow), // already matched by the first
				f(group, sp("nothing"), literal, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny),
				f(topic, nil, literal, nil, kmsg.ACLOperation(77), kmsg.ACLPermissionTypeAny),
			}
			dr := roundTrip(t, a, del, v).(*kmsg.DeleteACLsResponse)
			if len(dr.Results) != 4 || dr.Results[0].ErrorCode != 0 || len(dr.Results[0].MatchingACLs) != 2 ||
				len(dr.Results[1].MatchingACLs) != 0 || len(dr.Results[2].MatchingACLs) != 0 ||
				dr.Results[3].ErrorCode != kerr.InvalidRequest.Code {
				t.Fatalf("delete: %+v", dr.Results)
			}
			for _, m := range dr.Results[0].MatchingACLs {
				if m.Principal != "User:agent" || m.ResourceName != "logs" || m.ErrorCode != 0 {
					t.Fatalf("deleted %+v", m)
				}
			}
			if a.Authorize("User:agent", "10.0.0.1", opWrite, topic, "logs") {
				t.Fatal("deleted binding still applies")
			}
			if n := len(a.Bindings()); n != len(all)-2 {
				t.Fatalf("%d bindings left, want %d", n, len(all)-2)
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	a := open(t, Config{Enabled: true})
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = []kmsg.CreateACLsRequestCreation{
		creation(topic, literal, "ok", "User:bob", "*", opRead, allow),
		creation(topic, literal, "t", "bob", "*", opRead, allow),                         // principal
		creation(kmsg.ACLResourceType(12), literal, "t", "User:bob", "*", opRead, allow), // resource type
		creation(kmsg.ACLResourceTypeAny, literal, "t", "User:bob", "*", opRead, allow),
		creation(topic, kmsg.ACLResourcePatternTypeMatch, "t", "User:bob", "*", opRead, allow),
		creation(topic, literal, "t", "User:bob", "*", kmsg.ACLOperationAny, allow),
		creation(topic, literal, "t", "User:bob", "*", opRead, kmsg.ACLPermissionTypeAny),
		creation(topic, literal, "t", "User:bob", "host.example", opRead, allow),
		creation(topic, literal, "", "User:bob", "*", opRead, allow),
		creation(cluster, literal, "other", "User:bob", "*", opAlter, allow),
	}
	r := roundTrip(t, a, req, 3).(*kmsg.CreateACLsResponse)
	for i, res := range r.Results {
		want := kerr.InvalidRequest.Code
		if i == 0 {
			want = 0
		}
		if res.ErrorCode != want {
			t.Errorf("creation %d: code %d (%v), want %d", i, res.ErrorCode, res.ErrorMessage, want)
		}
		if want != 0 && (res.ErrorMessage == nil || *res.ErrorMessage == "") {
			t.Errorf("creation %d: no message", i)
		}
	}
	if n := len(a.Bindings()); n != 1 {
		t.Fatalf("%d bindings stored", n)
	}
}

func TestMaxBindings(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, Config{Enabled: true, MaxBindings: 5})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for i := range 7 {
		req.Creations = append(req.Creations, creation(topic, literal, fmt.Sprint("t", i), "User:bob", "*", opRead, allow))
	}
	r := roundTrip(t, a, req, 2).(*kmsg.CreateACLsResponse)
	for i, res := range r.Results {
		want := int16(0)
		if i >= 5 {
			want = kerr.PolicyViolation.Code
		}
		if res.ErrorCode != want {
			t.Fatalf("creation %d: %d, want %d", i, res.ErrorCode, want)
		}
	}
	// Honest work goes on: a delete makes room again.
	del := kmsg.NewPtrDeleteACLsRequest()
	d := kmsg.NewDeleteACLsRequestFilter()
	d.ResourceType, d.ResourceName, d.Operation, d.PermissionType = topic, sp("t0"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, d)
	if dr := roundTrip(t, a, del, 2).(*kmsg.DeleteACLsResponse); len(dr.Results[0].MatchingACLs) != 1 {
		t.Fatalf("delete: %+v", dr.Results)
	}
	req.Creations = req.Creations[5:6]
	if r := roundTrip(t, a, req, 2).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != 0 {
		t.Fatalf("create after delete: %d", r.Results[0].ErrorCode)
	}
	// A file holding more than the limit does not load.
	if _, err := Open(dir, Config{MaxBindings: 4}); err == nil {
		t.Fatal("loaded 5 bindings with a limit of 4")
	}
}

func TestDeleteFilterLimit(t *testing.T) {
	a := open(t, Config{Enabled: true}, bind(topic, literal, "t", "User:bob", opRead, allow))
	del := kmsg.NewPtrDeleteACLsRequest()
	// Named filters, looked up in the index, up to MaxFiltersPerRequest.
	for range MaxFiltersPerRequest - MaxScanFiltersPerRequest {
		d := kmsg.NewDeleteACLsRequestFilter()
		d.ResourceType, d.ResourceName, d.Operation, d.PermissionType = topic, sp("x"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		del.Filters = append(del.Filters, d)
	}
	// Scanning filters: the first deletes, those beyond the limits are refused.
	for range MaxScanFiltersPerRequest + 3 {
		d := kmsg.NewDeleteACLsRequestFilter()
		d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, any_, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		del.Filters = append(del.Filters, d)
	}
	dr := roundTrip(t, a, del, 3).(*kmsg.DeleteACLsResponse)
	first := MaxFiltersPerRequest - MaxScanFiltersPerRequest
	if len(dr.Results) != len(del.Filters) || len(dr.Results[first].MatchingACLs) != 1 {
		t.Fatalf("first scanning filter: %+v", dr.Results[first])
	}
	for i, r := range dr.Results {
		want := int16(0)
		if i >= MaxFiltersPerRequest {
			want = kerr.InvalidRequest.Code
		}
		if r.ErrorCode != want {
			t.Fatalf("filter %d: %d, want %d", i, r.ErrorCode, want)
		}
	}
	// Scanning filters beyond their own limit, in a shorter request.
	del.Filters = del.Filters[first-1:]
	dr = roundTrip(t, a, del, 3).(*kmsg.DeleteACLsResponse)
	for i, r := range dr.Results {
		want := int16(0)
		if i > MaxScanFiltersPerRequest {
			want = kerr.InvalidRequest.Code
		}
		if r.ErrorCode != want {
			t.Fatalf("short request, filter %d: %d, want %d", i, r.ErrorCode, want)
		}
	}
}

func TestHandlersDisabled(t *testing.T) {
	a := open(t, Config{})
	c := kmsg.NewPtrCreateACLsRequest()
	c.Creations = []kmsg.CreateACLsRequestCreation{creation(topic, literal, "t", "User:bob", "*", opRead, allow)}
	if r := roundTrip(t, a, c, 1).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("create: %d", r.Results[0].ErrorCode)
	}
	d := describeFilter(kmsg.ACLResourceTypeAny, nil, any_, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)
	if r := roundTrip(t, a, d, 1).(*kmsg.DescribeACLsResponse); r.ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("describe: %d", r.ErrorCode)
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Filters = []kmsg.DeleteACLsRequestFilter{kmsg.NewDeleteACLsRequestFilter()}
	if r := roundTrip(t, a, del, 1).(*kmsg.DeleteACLsResponse); r.Results[0].ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("delete: %d", r.Results[0].ErrorCode)
	}
	if _, ok := a.Handle(kmsg.NewPtrMetadataRequest()); ok {
		t.Fatal("Metadata handled")
	}
}

func TestAPIKeys(t *testing.T) {
	keys := APIKeys()
	var got []int16
	for _, k := range keys {
		got = append(got, k.ApiKey)
		if k.MinVersion != 0 || k.MaxVersion != 3 {
			t.Errorf("key %d: %d..%d", k.ApiKey, k.MinVersion, k.MaxVersion)
		}
	}
	if !slices.Equal(got, []int16{29, 30, 31}) {
		t.Fatal(got)
	}
	if ClusterOperation(29) != opDescribe || ClusterOperation(30) != opAlter || ClusterOperation(31) != opAlter || ClusterOperation(0) != kmsg.ACLOperationUnknown {
		t.Fatal("ClusterOperation")
	}
}

func TestStoreFailureLeavesStateUnchanged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := mkdir(dir); err != nil {
		t.Fatal(err)
	}
	a, err := Open(dir, Config{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := removeAll(dir); err != nil {
		t.Fatal(err)
	}
	c := kmsg.NewPtrCreateACLsRequest()
	c.Creations = []kmsg.CreateACLsRequestCreation{creation(topic, literal, "t", "User:bob", "*", opRead, allow)}
	r := roundTrip(t, a, c, 3).(*kmsg.CreateACLsResponse)
	if r.Results[0].ErrorCode != kerr.UnknownServerError.Code {
		t.Fatalf("create into a missing directory: %d", r.Results[0].ErrorCode)
	}
	if len(a.Bindings()) != 0 || a.Authorize("User:bob", "1.1.1.1", opRead, topic, "t") {
		t.Fatal("binding applied although not stored")
	}
}
