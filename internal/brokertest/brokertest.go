// Package brokertest starts logpipe's own broker for tests of the components
// that talk to Kafka.
package brokertest

import (
	"net"
	"testing"
	"time"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/logging"
)

// Broker is a broker running for one test.
type Broker struct {
	cfg broker.Config
	b   *broker.Broker
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = ln.Addr().String() // a fixed port, so that Restart can reuse it
	cfg.Server.Advertised = cfg.Server.Listen
	ln.Close()
	b, err := broker.Start(cfg, logging.Discard())
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	tb := &Broker{cfg: cfg, b: b}
	t.Cleanup(func() {
		if tb.b == nil {
			return
		}
		if err := tb.b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return tb
}

// Stop stops the broker, as an outage; Restart brings it back.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if err := b.b.Close(); err != nil {
		t.Errorf("stop broker: %v", err)
	}
	b.b = nil
}

// Restart starts the stopped broker again on the same address and data.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	cfg := b.cfg
	cfg.Server.Listen = b.cfg.Server.Advertised
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.b, err = broker.Start(cfg, logging.Discard())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly after Close
	}
	if err != nil {
		t.Fatalf("restart broker: %v", err)
	}
}

// Addr is the bootstrap address, host:port.
func (b *Broker) Addr() string { return b.b.Addr() }
