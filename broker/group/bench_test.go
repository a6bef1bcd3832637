package group

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker/server"
)

// BenchmarkCommitLatency measures OffsetCommit latency through the coordinator on a real
// store (fsync before the answer), one committer and eight concurrent committers sharing
// fsyncs.
func BenchmarkCommitLatency(b *testing.B) {
	for _, committers := range []int{1, 8} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			h := newHarness(b, func(c *Config) { c.Clock = SystemClock{} })
			lat := make([][]time.Duration, committers)
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < committers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					group := fmt.Sprintf("bench-%d", w)
					for i := w; i < b.N; i += committers {
						req := commitReq(8, group, "", -1, map[int32]int64{int32(i % 6): int64(i)})
						start := time.Now()
						resp, err := h.c.Handle(context.Background(), server.Client{}, req)
						lat[w] = append(lat[w], time.Since(start))
						if err != nil || resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode != 0 {
							b.Errorf("commit: %v %+v", err, resp)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkRebalance measures the coordinator's own cost of forming a 3-member group
// (JoinGroup v4 with MEMBER_ID_REQUIRED, SyncGroup) and of the rebalance after one member
// leaves, with no initial delay: the protocol work without client think time.
func BenchmarkRebalance(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.Clock = SystemClock{}; c.InitialRebalanceDelay = -1 })
	b.ResetTimer()
	var formTotal, leaveTotal time.Duration
	for i := 0; i < b.N; i++ {
		group := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		ids := make([]string, 3)
		for j := range ids {
			ids[j] = h.do(joinReq(4, group, "")).(*kmsg.JoinGroupResponse).MemberID
		}
		var chs []*call
		for _, id := range ids {
			chs = append(chs, h.async(joinReq(4, group, id)))
		}
		var resps []*kmsg.JoinGroupResponse
		for _, ch := range chs {
			resps = append(resps, wait[*kmsg.JoinGroupResponse](b, ch))
		}
		h.syncAll(group, resps)
		formTotal += time.Since(start)

		start = time.Now()
		lv := kmsg.NewPtrLeaveGroupRequest()
		lv.Group, lv.MemberID = group, ids[2]
		h.do(lv)
		chs = chs[:0]
		for _, id := range ids[:2] {
			chs = append(chs, h.async(joinReq(4, group, id)))
		}
		resps = resps[:0]
		for _, ch := range chs {
			resps = append(resps, wait[*kmsg.JoinGroupResponse](b, ch))
		}
		h.syncAll(group, resps)
		leaveTotal += time.Since(start)
	}
	b.ReportMetric(float64(formTotal.Microseconds())/float64(b.N), "form-µs")
	b.ReportMetric(float64(leaveTotal.Microseconds())/float64(b.N), "after-leave-µs")
}
