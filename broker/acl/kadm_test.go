package acl

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestKadm drives the handlers with kadm's ACL builder over the wire: franz-go's
// kfake serves the Kafka protocol and hands the three ACL requests, as decoded
// from kgo's bytes, to the Authorizer, whose responses kfake encodes back.
func TestKadm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     *kversion.Versions
		version int16
	}{
		{"kafka-2.4", kversion.V2_4_0(), 1},
		{"kafka-2.7", kversion.V2_7_0(), 2},
		{"latest", kversion.Stable(), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := open(t, Config{Enabled: true, SuperUsers: []string{"User:admin"}})
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var mu sync.Mutex
			seen := map[int16]int16{}
			for _, key := range []int16{29, 30, 31} {
				c.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
					c.KeepControl()
					mu.Lock()
					seen[req.Key()] = req.GetVersion()
					mu.Unlock()
					resp, ok := a.Handle(req)
					return resp, nil, ok
				})
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MaxVersions(tc.max))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// The setup the README describes: agents write their topics
			// (prefixed) idempotently, the transfer reads them with its group.
			created := 0
			for _, b := range []*kadm.ACLBuilder{
				kadm.NewACLs().Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).
					Allow("User:agent").Operations(kadm.OpWrite, kadm.OpDescribe),
				kadm.NewACLs().Clusters().Allow("User:agent").Operations(kadm.OpIdempotentWrite),
				kadm.NewACLs().Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).
					Allow("User:transfer").Operations(kadm.OpRead, kadm.OpDescribe),
				kadm.NewACLs().Groups("logtransfer").Allow("User:transfer").Operations(kadm.OpRead),
				kadm.NewACLs().Topics("logs-secret").Deny("User:transfer").DenyHosts("10.0.0.9").Operations(kadm.OpRead),
			} {
				res, err := adm.CreateACLs(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res {
					if r.Err != nil {
						t.Fatalf("create %+v: %v", r, r.Err)
					}
					created++
				}
			}
			if n := len(a.Bindings()); n != created || created != 7 {
				t.Fatalf("%d bindings stored, %d created", n, created)
			}
			for _, ck := range []check{
				{"User:agent", "10.0.0.1", opWrite, topic, "logs-web", true},
				{"User:agent", "10.0.0.1", opRead, topic, "logs-web", false},
				{"User:agent", "10.0.0.1", opIdemWrite, cluster, ClusterName, true},
				{"User:transfer", "10.0.0.1", opRead, topic, "logs-web", true},
				{"User:transfer", "10.0.0.1", opRead, group, "logtransfer", true},
				{"User:transfer", "10.0.0.9", opRead, topic, "logs-secret", false},
				{"User:transfer", "10.0.0.1", opRead, topic, "logs-secret", true},
				{"User:transfer", "10.0.0.1", opWrite, topic, "logs-web", false},
			} {
				if got := a.Authorize(ck.principal, ck.host, ck.op, ck.rt, ck.name); got != ck.want {
					t.Errorf("%+v: %v", ck, got)
				}
			}

			// A principal without a type is refused per binding.
			res, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("t").Allow("bob").Operations(kadm.OpRead))
			if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.InvalidRequest) {
				t.Fatalf("bad principal: %+v %v", res, err)
			}

			// Describe everything; then what applies to topic logs-web.
			desc, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
				Allow().AllowHosts().Deny().DenyHosts().Operations())
			if err != nil {
				t.Fatal(err)
			}
			if n := countDescribed(t, desc); n != 7 {
				t.Fatalf("described %d of 7", n)
			}
			desc, err = adm.DescribeACLs(ctx, kadm.NewACLs().Topics("logs-web").ResourcePatternType(kadm.ACLPatternMatch).
				Allow("User:transfer").AllowHosts().Operations())
			if err != nil {
				t.Fatal(err)
			}
			if n := countDescribed(t, desc); n != 2 {
				t.Fatalf("transfer's allows matching logs-web: %d, want 2", n)
			}

			// Delete the agent's topic bindings with a prefixed filter.
			del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).
				Allow("User:agent").AllowHosts().Operations())
			if err != nil {
				t.Fatal(err)
			}
			deleted := 0
			for _, r := range del {
				if r.Err != nil {
					t.Fatalf("delete: %v", r.Err)
				}
				for _, d := range r.Deleted {
					if d.Err != nil || d.Principal != "User:agent" || d.Name != "logs-" || d.Pattern != prefixed {
						t.Fatalf("deleted %+v", d)
					}
					deleted++
				}
			}
			if deleted != 2 || len(a.Bindings()) != 5 || a.Authorize("User:agent", "10.0.0.1", opWrite, topic, "logs-web") {
				t.Fatalf("deleted %d, %d left", deleted, len(a.Bindings()))
			}
			mu.Lock()
			defer mu.Unlock()
			for key, v := range seen {
				if v != tc.version {
					t.Errorf("key %d went at v%d, want v%d", key, v, tc.version)
				}
			}
			if len(seen) != 3 {
				t.Errorf("keys seen: %v", seen)
			}
		})
	}
}

func countDescribed(t *testing.T, rs kadm.DescribeACLsResults) int {
	t.Helper()
	n := 0
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("describe: %v", r.Err)
		}
		n += len(r.Described)
	}
	return n
}
