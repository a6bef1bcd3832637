package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/broker/sasl"
	"github.com/logpipe/logpipe/broker/server"
	"github.com/logpipe/logpipe/internal/kafkasec"
)

// TestACLs runs the secured setup the README shows: agents may only write to
// their topics (and use idempotence), transfers only read them in their group,
// an admin (super user) manages the ACLs; everyone else sees nothing.
func TestACLs(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) {
		c.Server.Listeners = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"
		c.ACL = broker.ACLConfig{Enabled: true, SuperUsers: "User:admin"}
	})
	users, err := sasl.OpenUsers(b.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"admin", "agent", "transfer", "nobody"} {
		if err := users.SetPassword(u, sasl.ScramSHA512, u+"-pw", sasl.MinIterations); err != nil {
			t.Fatal(err)
		}
	}
	addr := b.ListenerAddr(server.SASLPlaintext)
	as := func(user string, opts ...kgo.Opt) *kgo.Client {
		return kgoWith(t, addr, kafkasec.Config{SASLMechanism: "SCRAM-SHA-512", Username: user, Password: user + "-pw"}, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin := kadm.NewClient(as("admin"))
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, "logs-web"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil {
		t.Fatal(err)
	}
	grants := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:agent").Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:agent").Clusters().Operations(kadm.OpIdempotentWrite),
		kadm.NewACLs().Allow("User:transfer").Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Groups("logtransfer").Operations(kadm.OpRead),
	}
	for _, g := range grants {
		res, err := admin.CreateACLs(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %+v: %v", r, r.Err)
			}
		}
	}

	// The agent writes its topic, idempotently; not another.
	agent := as("agent")
	if err := agent.ProduceSync(ctx, &kgo.Record{Topic: "logs-web", Value: []byte("line 1")}).FirstErr(); err != nil {
		t.Fatalf("agent to logs-web: %v", err)
	}
	if _, err := kmsgProduce(ctx, agent, "secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("agent to secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// The transfer reads in its group; not in another, and may not write.
	tr := as("transfer", kgo.ConsumerGroup("logtransfer"), kgo.ConsumeTopics("logs-web"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < 1; {
		fs := tr.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the transfer read nothing")
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("transfer fetch %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	if err := tr.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("transfer commit: %v", err)
	}
	other := kadm.NewClient(as("transfer"))
	if _, err := other.CommitOffsets(ctx, "someone-else", kadm.Offsets{"logs-web": {0: {At: 1}}}); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("transfer commit in another group: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	// (kgo asks for an idempotent producer id first: CLUSTER_AUTHORIZATION_FAILED.)
	if _, err := kmsgProduce(ctx, as("transfer"), "logs-web"); !denied(err) {
		t.Fatalf("transfer producing: %v, want an authorization failure", err)
	}

	// Metadata lists only what one may describe (the super user sees
	// __consumer_offsets too).
	for user, want := range map[string]int{"admin": 3, "agent": 1, "transfer": 1, "nobody": 0} {
		m, err := kadm.NewClient(as(user)).Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Topics) != want {
			t.Fatalf("%s sees %d topics (%v), want %d", user, len(m.Topics), m.Topics.Names(), want)
		}
	}
	// Anonymous clients on the plaintext listener get nothing either.
	if _, err := kmsgProduce(ctx, newKgo(t, b.Addr()), "logs-web"); !denied(err) {
		t.Fatalf("anonymous produce: %v", err)
	}
	// Only a super user (or who has ALTER on the cluster) manages ACLs.
	res, err := kadm.NewClient(as("agent")).CreateACLs(ctx, kadm.NewACLs().Allow("User:agent").Topics("secret").Operations(kadm.OpRead))
	if err == nil && (len(res) == 0 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed)) {
		t.Fatalf("agent creating an ACL: %+v", res)
	}
	d, err := admin.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Deny().DenyHosts())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range d {
		n += len(r.Described)
	}
	if n < 5 {
		t.Fatalf("DescribeACLs found %d bindings", n)
	}
}

// kmsgProduce produces one record without retries and returns the partition's
// error.
func kmsgProduce(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")})
	return 0, r.FirstErr()
}

func denied(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}
