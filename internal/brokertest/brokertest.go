// Package brokertest starts a Kafka-compatible broker for tests of the components that
// talk to Kafka.
//
// TODO(broker): this is backed by franz-go's kfake until logpipe's own broker serves
// the whole protocol; then it starts broker.Start on a temporary directory instead.
package brokertest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a broker running for one test.
type Broker struct {
	c *kfake.Cluster
}

// Start starts a broker with auto-created topics of the given default partition count,
// stopped when the test ends.
func Start(t testing.TB, partitions int32) *Broker {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(partitions)))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(c.Close)
	return &Broker{c: c}
}

// Addr is the bootstrap address, host:port.
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }
