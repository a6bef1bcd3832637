package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCloseAnswersInFlight closes the broker while a Fetch long poll waits: the
// poll is answered at once, the connection then closes, and Close returns well
// within the shutdown timeout.
func TestCloseAnswersInFlight(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "closing", 1, nil)
	c := dialRaw(t, b.Addr())
	if r := c.roundTrip(produceReq("closing", -1, batch(4, 0)), 9).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis = 20000
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "closing"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset = 4
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	corr := c.send(fetch, 11)
	time.Sleep(100 * time.Millisecond) // let the poll start waiting; not a synchronisation the test relies on
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	body := c.read(corr, false)
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 4 {
		t.Fatalf("fetch answered with %+v", p)
	}
	c.expectClosed()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("shutdown took %v", d)
	}
}

func TestApiVersionsBadSoftwareName(t *testing.T) {
	b := startBroker(t, nil)
	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bad name!", "1"
	if r := c.roundTrip(req, 3).(*kmsg.ApiVersionsResponse); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("error code %d, want INVALID_REQUEST", r.ErrorCode)
	}
}
