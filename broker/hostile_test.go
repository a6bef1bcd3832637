package broker_test

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/recordbatch"
	"github.com/logpipe/logpipe/internal/recordbatch/rbtest"
	"github.com/logpipe/logpipe/internal/wait"
)

// honestTraffic produces to topic with kgo, one record at a time (acks=all), until
// the test ends; progress returns how many were acknowledged.
func honestTraffic(t *testing.T, addr, topic string) (progress func() int64) {
	t.Helper()
	cl := newKgo(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(0))
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: testValue("honest", i)}).FirstErr(); err == nil {
				n.Add(1)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return n.Load
}

// expectProgress waits until the honest producer has had more records
// acknowledged than before.
func expectProgress(t *testing.T, progress func() int64, what string) {
	t.Helper()
	before := progress()
	wait.For(t, 10*time.Second, "honest produce to go on "+what, func() bool { return progress() > before+10 })
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestHostileInputs sends, with the default limits, each input the hostile-input
// issue found to take the pipeline down, while an honest producer keeps going on
// another connection. Each bad sender gets its error or loses its connection;
// the broker stays within the stated bounds; nothing bad is stored.
func TestHostileInputs(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "honest", 1, nil)
	createTopic(t, b.Addr(), "target", 1, nil)
	progress := honestTraffic(t, b.Addr(), "honest")
	expectProgress(t, progress, "at the start")

	endOffset := func(topic string) int64 {
		c := dialRaw(t, b.Addr())
		lo := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		return c.roundTrip(lo, 6).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset
	}
	produceCode := func(records []byte) int16 {
		c := dialRaw(t, b.Addr())
		resp := c.roundTrip(produceReq("target", -1, records), 9).(*kmsg.ProduceResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}

	t.Run("zstd batch declaring 60 GiB", func(t *testing.T) {
		bomb := rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, 0, rbtest.BigRecord(1<<30), 2))
		before := heapInUse()
		if got := produceCode(bomb); got != kerr.InvalidRecord.Code {
			t.Fatalf("error code %d, want INVALID_RECORD", got)
		}
		// A real expansion past the bound: 64 RLE blocks of 128 KiB, 300 bytes sent.
		expands := rbtest.WithRecords(recordbatch.Zstd, 1, rbtest.ZstdBomb(60<<30, 21, rbtest.BigRecord(1<<30), 300))
		if got := produceCode(expands); got != kerr.InvalidRecord.Code {
			t.Fatalf("expanding batch: error code %d, want INVALID_RECORD", got)
		}
		if grew := int64(heapInUse()) - int64(before); grew > 64<<20 {
			t.Fatalf("heap grew by %d MiB", grew>>20)
		}
		if end := endOffset("target"); end != 0 {
			t.Fatalf("end offset %d: a bomb was stored", end)
		}
		expectProgress(t, progress, "after the bombs")
	})

	t.Run("overlong varint", func(t *testing.T) {
		if got := produceCode(rbtest.OverlongVarint()); got != kerr.InvalidRecord.Code {
			t.Fatalf("error code %d, want INVALID_RECORD", got)
		}
		if end := endOffset("target"); end != 0 {
			t.Fatalf("end offset %d: the batch was stored", end)
		}
	})

	t.Run("ApiVersions with 2^32 tagged fields", func(t *testing.T) {
		cpu := cpuTime()
		for range 2 {
			c := dialRaw(t, b.Addr())
			// key 18 v3, correlation 1, client id "x", no header tags; body: software
			// name "a", version "1", then a tag count of 0xFFFFFFFF and nothing more.
			body := []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 1, 'x', 0, 2, 'a', 2, '1', 0xff, 0xff, 0xff, 0xff, 0x0f}
			c.write(binary.BigEndian.AppendUint32(nil, uint32(len(body))))
			c.write(body)
			c.expectClosed()
		}
		if used := cpuTime() - cpu; used > 2*time.Second {
			t.Fatalf("two requests cost %s of CPU", used)
		}
		expectProgress(t, progress, "after the tag bombs")
	})

	t.Run("Fetch naming one partition many times", func(t *testing.T) {
		// 16 MB: over max_other_request_bytes, the connection closes unread.
		c := dialRaw(t, b.Addr())
		c.write([]byte{0x01, 0, 0, 0, 0, 1, 0, 12})
		c.expectClosed()

		// Just under 1 MiB: 30,000 copies of one partition, an hour's MaxWait.
		goroutines := runtime.NumGoroutine()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 3_600_000
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "target"
		for range 30_000 { // 28 bytes each: about 840 KB
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.FetchOffset = 0
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		var conns []*rawConn
		var corrs []int32
		for range 2 {
			c := dialRaw(t, b.Addr())
			conns = append(conns, c)
			corrs = append(corrs, c.send(req, 11))
		}
		// Both wait with a handful of goroutines (reader, writer and one waiter per
		// connection), not one per copy.
		wait.For(t, 5*time.Second, "the fetches to arrive", func() bool { return runtime.NumGoroutine() >= goroutines+6 })
		if n := runtime.NumGoroutine(); n > goroutines+20 {
			t.Fatalf("%d goroutines while two fetches wait (%d before)", n, goroutines)
		}
		// Data arrives: each is answered, with the partition once.
		cl := newKgo(t, b.Addr(), kgo.DefaultProduceTopic("target"))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for i, c := range conns {
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 11
			if err := resp.ReadFrom(c.read(corrs[i], false)); err != nil {
				t.Fatal(err)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("answered %d topics, %d partitions; want the partition once", len(resp.Topics), len(resp.Topics[0].Partitions))
			}
		}
		expectProgress(t, progress, "after the fetches")
	})

	t.Run("slow senders declaring 100 MiB", func(t *testing.T) {
		before := heapInUse()
		for range 30 {
			c, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A Produce frame of 100 MiB - 1, of which 64 KiB arrive.
			hdr := binary.BigEndian.AppendUint32(nil, 100<<20-1)
			hdr = append(hdr, 0, 0, 0, 9)
			c.Write(append(hdr, make([]byte, 64<<10)...)) // and stall, open until the test ends
		}
		expectProgress(t, progress, "while 30 senders stall")
		if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
			t.Fatalf("heap grew by %d MiB for 30 stalled 100 MiB requests", grew>>20)
		}
	})
}

// TestConnectionLimits checks the per-address limit, the idle timeout and the
// request timeout, with short settings so that the test need not wait minutes.
func TestConnectionLimits(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) {
		c.Server.MaxConnectionsPerIP = 3
		c.Server.IdleTimeout = time.Second
		c.Server.RequestTimeout = time.Second
	})
	var open []*rawConn
	for range 3 {
		c := dialRaw(t, b.Addr())
		c.roundTrip(apiVersionsReq(), 3)
		open = append(open, c)
	}
	extra := dialRaw(t, b.Addr())
	extra.expectClosed()

	// Another address has its own count.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	oc, err := d.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oc.Close() })
	other := &rawConn{t: t, c: oc}
	other.roundTrip(apiVersionsReq(), 3)

	// Idle connections close after idle_timeout; a stalled request after request_timeout.
	open[1].write([]byte{0, 0, 1, 0, 0, 18})
	for _, c := range open {
		c.expectClosed()
	}
	// Their slots are free again.
	wait.For(t, 5*time.Second, "a slot to free", func() bool {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		req := kmsg.NewRequestFormatter(kmsg.FormatterClientID("x")).AppendRequest(nil, apiVersionsReq(), 1)
		c.Write(req)
		var size [4]byte
		_, err = c.Read(size[:])
		return err == nil
	})
}
