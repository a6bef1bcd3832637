package acl

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchAuthorizer holds 1,000 bindings as a broker with a few hundred agents
// might: per agent a literal WRITE on its topic, per transfer a prefixed READ
// and a group READ, a wildcard DESCRIBE and some denies.
func benchAuthorizer(b *testing.B) *Authorizer {
	var bs []Binding
	for i := range 800 {
		bs = append(bs, bind(topic, literal, fmt.Sprintf("logs-host-%04d", i), fmt.Sprintf("User:agent-%d", i%200), opWrite, allow))
	}
	for i := range 100 {
		bs = append(bs, bind(topic, prefixed, fmt.Sprintf("logs-host-%02d", i), fmt.Sprintf("User:transfer-%d", i%10), opRead, allow))
		bs = append(bs, bind(group, literal, fmt.Sprintf("transfer-%d", i), fmt.Sprintf("User:transfer-%d", i%10), opRead, allow))
	}
	a := open(b, Config{Enabled: true, SuperUsers: []string{"User:admin"}}, bs...)
	if n := len(a.Bindings()); n != 1000 {
		b.Fatalf("%d bindings", n)
	}
	return a
}

func BenchmarkAuthorize(b *testing.B) {
	a := benchAuthorizer(b)
	for _, bc := range []struct {
		name      string
		principal string
		op        kmsg.ACLOperation
		rt        kmsg.ACLResourceType
		res       string
		want      bool
	}{
		{"literal-allowed", "User:agent-7", opWrite, topic, "logs-host-0207", true},
		{"prefixed-allowed", "User:transfer-3", opRead, topic, "logs-host-0345", true},
		{"implied-describe", "User:agent-7", opDescribe, topic, "logs-host-0207", true},
		{"denied", "User:agent-8", opWrite, topic, "logs-host-0207", false},
		{"group", "User:transfer-3", opRead, group, "transfer-13", true},
		{"super-user", "User:admin", opDelete, topic, "logs-host-0207", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := a.Authorize(bc.principal, "10.0.0.1", bc.op, bc.rt, bc.res); got != bc.want {
				b.Fatalf("Authorize = %v", got)
			}
			b.ReportAllocs()
			for b.Loop() {
				a.Authorize(bc.principal, "10.0.0.1", bc.op, bc.rt, bc.res)
			}
		})
	}
}
