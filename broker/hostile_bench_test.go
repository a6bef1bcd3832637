package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/internal/recordbatch"
	"github.com/logpipe/logpipe/internal/recordbatch/rbtest"
)

// BenchmarkProduceUnderFlood measures honest produce throughput (kgo, acks=all,
// 4 producers, b.N records) against a broker process with the default limits,
// first alone, then while hostile clients flood it: decompression bombs,
// tag-count bombs, Fetches repeating one partition with an hour's MaxWait, and
// senders that declare 100 MiB requests and stall. It reports both rates and
// their ratio (the goal is at least 0.7).
func BenchmarkProduceUnderFlood(b *testing.B) {
	bb := startBenchBroker(b, "logpipe", 4, "bench")
	createTopic(b, bb.addr, "flooded", 1, nil)
	rate := func() float64 {
		t0 := time.Now()
		kgoProduce(b, bb.addr, "bench", b.N, 4, true)
		return float64(b.N) / time.Since(t0).Seconds()
	}
	b.ResetTimer()
	alone := rate()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var hostile sync.Map // counts by kind
	count := func(kind string) {
		v, _ := hostile.LoadOrStore(kind, new(int64))
		*v.(*int64)++
	}
	flood := func(kind string, fn func() bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if fn() {
					count(kind)
				}
				// Each flooder sends one attack per 2 ms, as a client across a
				// network would; without a pause the flooders' own CPU, on this
				// machine's two cores, would be what slows the honest producers.
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", bb.addr, time.Second)
		if err != nil {
			return nil
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	bomb := produceReq("flooded", -1, rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, 21, rbtest.BigRecord(1<<30), 300)))
	bombFrame := kmsg.NewRequestFormatter().AppendRequest(nil, func() kmsg.Request { bomb.SetVersion(9); return bomb }(), 1)
	flood("zstd bomb", func() bool {
		c := dial()
		if c == nil {
			return false
		}
		defer c.Close()
		c.Write(bombFrame)
		var resp [256]byte
		_, err := c.Read(resp[:])
		return err == nil
	})
	tagBomb := []byte{0, 0, 0, 21, 0, 18, 0, 3, 0, 0, 0, 1, 0, 1, 'x', 0, 2, 'a', 2, '1', 0xff, 0xff, 0xff, 0xff, 0x0f}
	flood("tag bomb", func() bool {
		c := dial()
		if c == nil {
			return false
		}
		defer c.Close()
		c.Write(tagBomb)
		var one [1]byte
		c.Read(one[:]) // the broker closes the connection
		return true
	})
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 3_600_000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "flooded"
	for range 30_000 {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
	}
	fetch.Topics = append(fetch.Topics, ft)
	fetchFrame := kmsg.NewRequestFormatter().AppendRequest(nil, fetch, 1)
	flood("parked fetch", func() bool {
		c := dial()
		if c == nil {
			return false
		}
		defer c.Close()
		for range 8 { // pipelined on one connection
			if _, err := c.Write(fetchFrame); err != nil {
				return false
			}
		}
		var one [1]byte
		c.Read(one[:]) // until the deadline: the fetches are parked
		return true
	})
	flood("stalled 100 MiB", func() bool {
		c := dial()
		if c == nil {
			return false
		}
		defer c.Close()
		hdr := binary.BigEndian.AppendUint32(nil, 100<<20-1)
		c.Write(append(append(hdr, 0, 0, 0, 9), make([]byte, 1<<20)...))
		var one [1]byte
		c.Read(one[:]) // stall until the deadline
		return true
	})

	time.Sleep(time.Second) // let the flood build up before measuring (a benchmark, not a test)
	flooded := rate()
	b.StopTimer()
	cancel()
	wg.Wait()

	b.ReportMetric(alone, "records/s-alone")
	b.ReportMetric(flooded, "records/s-flooded")
	b.ReportMetric(flooded/alone, "flooded/alone")
	_, peak := procStats(bb.pid)
	b.ReportMetric(peak, "broker-peak-RSS-MiB")
	hostile.Range(func(k, v any) bool {
		b.Logf("%s: %d", k, *v.(*int64))
		return true
	})
}

// BenchmarkIdleConnections opens 5,000 connections to a broker process (from
// ten loopback addresses, within the default per-address limit), each after one
// ApiVersions request, and reports the broker's resident memory for them.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 5000
	bb := startBenchBroker(b, "logpipe", 1, "bench")
	base := currentRSS(b, bb.pid)
	req := kmsg.NewRequestFormatter().AppendRequest(nil, func() kmsg.Request {
		r := kmsg.NewPtrApiVersionsRequest()
		r.SetVersion(3)
		r.ClientSoftwareName, r.ClientSoftwareVersion = "idle", "1"
		return r
	}(), 1)
	b.ResetTimer()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%10))}}
		c, err := d.Dial("tcp", bb.addr)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		c.Write(req)
		var size [4]byte
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(size[:]); err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
	}
	b.StopTimer()
	used := currentRSS(b, bb.pid) - base
	b.ReportMetric(used, "broker-RSS-MiB-for-5000-conns")
	b.ReportMetric(used*1024/n, "broker-KiB-per-conn")
}

// currentRSS is a process's resident set now, in MiB.
func currentRSS(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
