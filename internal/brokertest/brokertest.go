// Package brokertest starts logpipe's own broker for tests of the components
// that talk to Kafka.
package brokertest

import (
	"testing"
	"time"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/logging"
)

// Broker is a broker running for one test.
type Broker struct {
	b *broker.Broker
}

// Start starts a broker on a temporary directory at 127.0.0.1 (a free port),
// with auto-created topics of the given default partition count, stopped when
// the test ends.
func Start(t testing.TB, partitions int32) *Broker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.ShutdownTimeout = 2 * time.Second
	cfg.Log.Dir = t.TempDir()
	cfg.Log.NumPartitions = partitions
	cfg.Log.AutoCreateTopics = true
	cfg.Metrics.Listen = ""
	cfg.Group.InitialRebalanceDelay = 0 // no 3 s wait before a new group's first rebalance
	b, err := broker.Start(cfg, logging.Discard())
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return &Broker{b: b}
}

// Addr is the bootstrap address, host:port.
func (b *Broker) Addr() string { return b.b.Addr() }
