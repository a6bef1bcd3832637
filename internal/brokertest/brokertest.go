// Package brokertest starts logpipe's own broker for tests of the components
// that talk to Kafka.
package brokertest

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
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
	return StartWith(t, partitions, nil)
}

// StartWith is Start with edit, if not nil, applied to the configuration last (for
// example a shorter idle timeout, or a metrics listener).
func StartWith(t testing.TB, partitions int32, edit func(*broker.Config)) *Broker {
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
	if edit != nil {
		edit(&cfg)
	}
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

// Metric reads one series of the broker's /metrics, such as
// `logpipe_broker_connections`, 0 when absent. The broker must have been started with
// a metrics listener (StartWith).
func (b *Broker) Metric(tb testing.TB, series string) float64 {
	tb.Helper()
	addr := b.b.MetricsAddr()
	if addr == "" {
		tb.Fatal("brokertest: the broker has no metrics listener")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("brokertest: %s: %v", series, err)
			}
			return f
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return 0
}

// Addr is the bootstrap address, host:port.
func (b *Broker) Addr() string { return b.b.Addr() }
