package group

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the coordinator's Prometheus metrics.
type metrics struct {
	rebalances    prometheus.Counter
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	commitSeconds prometheus.Histogram
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) *metrics {
	m := &metrics{
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logpipe_broker_group_rebalances_total", Help: "Completed group rebalances (join phases).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logpipe_broker_group_offset_commits_total", Help: "OffsetCommit requests that stored offsets.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logpipe_broker_group_offset_commit_errors_total", Help: "OffsetCommit requests that failed to store offsets.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "logpipe_broker_group_offset_commit_seconds",
			Help:    "Time to store and fsync committed offsets.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg == nil {
		return m
	}
	groups := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "logpipe_broker_groups", Help: "Consumer groups with members.",
	}, func() float64 { g, _ := c.counts(); return float64(g) })
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "logpipe_broker_group_members", Help: "Members of all consumer groups.",
	}, func() float64 { _, n := c.counts(); return float64(n) })
	for _, col := range []prometheus.Collector{m.rebalances, m.commits, m.commitErrors, m.commitSeconds, groups, members} {
		if err := reg.Register(col); err != nil {
			c.log.Warn("register group metric", "err", err)
		}
	}
	return m
}

// counts returns the number of groups with members and the number of members.
func (c *Coordinator) counts() (groups, members int) {
	for _, cl := range c.cells() {
		cl.mu.Lock()
		if n := len(cl.g.members); n > 0 {
			groups++
			members += n
		}
		cl.mu.Unlock()
	}
	return groups, members
}
