package acl

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWorstCaseCost measures what the limits allow at most: a store of
// DefaultMaxBindings bindings, loaded at start, and a DeleteAcls of
// MaxScanFiltersPerRequest filters that each scan every binding, while honest
// requests keep being answered.
func TestWorstCaseCost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 bindings")
	}
	dir := t.TempDir()
	a, err := Open(dir, Config{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	bs := make([]Binding, 0, DefaultMaxBindings)
	for i := range DefaultMaxBindings {
		bs = append(bs, bind(topic, literal, fmt.Sprintf("logs-%06d", i), fmt.Sprintf("User:agent-%d", i%1000), opWrite, allow))
	}
	start := time.Now()
	if err := a.Add(bs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("adding %d bindings (index and file): %v", len(bs), time.Since(start))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start = time.Now()
	b, err := Open(dir, Config{Enabled: true})
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loading %d bindings: %v, %d MiB allocated", len(b.Bindings()), took, (after.TotalAlloc-before.TotalAlloc)>>20)
	if took > 20*time.Second {
		t.Fatalf("loading took %v", took)
	}

	// One more binding is refused.
	c := kmsg.NewPtrCreateACLsRequest()
	c.Creations = []kmsg.CreateACLsRequestCreation{creation(topic, literal, "one-more", "User:x", "*", opRead, allow)}
	if r := b.CreateACLs(c); r.Results[0].ErrorCode == 0 {
		t.Fatal("binding beyond the limit created")
	}

	// The most expensive DeleteAcls: every filter scans all bindings.
	del := kmsg.NewPtrDeleteACLsRequest()
	for range MaxScanFiltersPerRequest {
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType, f.Principal = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, sp("User:nobody")
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		del.Filters = append(del.Filters, f)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var honest int
	wg.Add(1)
	go func() { // authorizations go on, lock-free, meanwhile
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if !b.Authorize("User:agent-7", "10.0.0.1", opWrite, topic, "logs-000007") {
				t.Error("honest request denied")
				return
			}
			honest++
		}
	}()
	start = time.Now()
	r := b.DeleteACLs(del)
	took = time.Since(start)
	close(done)
	wg.Wait()
	for _, res := range r.Results {
		if res.ErrorCode != 0 || len(res.MatchingACLs) != 0 {
			t.Fatalf("delete: %+v", res)
		}
	}
	t.Logf("DeleteAcls of %d scanning filters over %d bindings: %v; %d authorizations meanwhile", len(del.Filters), len(bs), took, honest)
	if took > 10*time.Second {
		t.Fatalf("DeleteAcls took %v", took)
	}
}

// TestConcurrentChanges runs Authorize, Describe and changes together, for
// the race detector.
func TestConcurrentChanges(t *testing.T) {
	a := open(t, Config{Enabled: true}, bind(topic, literal, "stable", "User:bob", opRead, allow))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				name := fmt.Sprintf("t-%d-%d", w, i)
				c := kmsg.NewPtrCreateACLsRequest()
				c.Creations = []kmsg.CreateACLsRequestCreation{creation(topic, literal, name, "User:bob", "*", opRead, allow)}
				if r := a.CreateACLs(c); r.Results[0].ErrorCode != 0 {
					t.Errorf("create: %d", r.Results[0].ErrorCode)
					return
				}
				if !a.Authorize("User:bob", "1.2.3.4", opRead, topic, "stable") || !a.Authorize("User:bob", "1.2.3.4", opRead, topic, name) {
					t.Error("denied")
					return
				}
				d := describeFilter(topic, &name, literal, nil, nil, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny)
				if r := a.DescribeACLs(d); len(r.Resources) != 1 {
					t.Errorf("describe %s: %+v", name, r.Resources)
					return
				}
				del := kmsg.NewPtrDeleteACLsRequest()
				f := kmsg.NewDeleteACLsRequestFilter()
				f.ResourceType, f.ResourceName, f.Operation, f.PermissionType = topic, &name, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				del.Filters = append(del.Filters, f)
				if r := a.DeleteACLs(del); len(r.Results[0].MatchingACLs) != 1 {
					t.Errorf("delete %s: %+v", name, r.Results[0])
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(a.Bindings()); n != 1 {
		t.Fatalf("%d bindings left", n)
	}
}
