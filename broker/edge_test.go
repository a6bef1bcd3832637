package broker_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/recordbatch"
)

// rawConn speaks the Kafka protocol byte by byte, for requests no client sends.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send writes req at version and returns its correlation id.
func (r *rawConn) send(req kmsg.Request, version int16) int32 {
	r.t.Helper()
	r.corr++
	req.SetVersion(version)
	r.write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, r.corr))
	return r.corr
}

// read reads one response frame and checks its correlation id; it returns the body.
func (r *rawConn) read(corr int32, flexibleHeader bool) []byte {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		r.t.Fatalf("read response size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, frame); err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	if flexibleHeader {
		return frame[5:]
	}
	return frame[4:]
}

// roundTrip sends req and decodes the response.
func (r *rawConn) roundTrip(req kmsg.Request, version int16) kmsg.Response {
	r.t.Helper()
	corr := r.send(req, version)
	resp := req.ResponseKind()
	resp.SetVersion(version)
	body := r.read(corr, resp.IsFlexible() && resp.Key() != 18)
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %T: %v", resp, err)
	}
	return resp
}

// expectClosed checks that the broker closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(r.c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("connection still open")
	}
}

func apiVersionsReq() *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.ClientSoftwareName, r.ClientSoftwareVersion = "raw-test", "1.0"
	return r
}

// batch builds a record batch with n records, as a producer sends it; attrs
// sets the codec bits (the records are compressed with that codec).
func batch(n int, attrs int16) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Value: []byte("hello")}
	}
	b := recordbatch.New(time.Now().UnixMilli(), recs...)
	b.Attributes = attrs
	return recordbatch.Build(b)
}

func produceReq(topic string, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestProtocolEdgeCases(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) {
		c.Server.MaxRequestBytes = 1 << 20
		c.Log.MaxMessageBytes = 100 << 10
		c.Log.AutoCreateTopics = false
	})
	createTopic(t, b.Addr(), "edge", 1, nil)

	healthy := dialRaw(t, b.Addr())
	checkHealthy := func() {
		t.Helper()
		resp := healthy.roundTrip(apiVersionsReq(), 3).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) < 10 {
			t.Fatalf("ApiVersions on the healthy connection: %+v", resp)
		}
	}
	checkHealthy()

	t.Run("ApiVersions too new", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		// key 18, version 99, correlation 7, client id "x", then bytes of an unknown future body.
		c.write([]byte{0, 0, 0, 14, 0, 18, 0, 99, 0, 0, 0, 7, 0, 1, 'x', 0, 1, 2})
		body := c.read(7, false)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != 4 {
			t.Fatalf("%+v", resp)
		}
		// The connection stays usable at a supported version.
		if r := c.roundTrip(kmsg.NewPtrApiVersionsRequest(), 0).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("retry at v0: %+v", r)
		}
	})

	closes := map[string]func(c *rawConn){
		"unknown API key": func(c *rawConn) { c.write([]byte{0, 0, 0, 10, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff}) },
		"unsupported version": func(c *rawConn) {
			c.send(kmsg.NewPtrMetadataRequest(), 13)
		},
		"produce v2": func(c *rawConn) { c.send(produceReq("edge", 1, batch(1, 0)), 2) },
		"garbage":    func(c *rawConn) { c.write([]byte{0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff}) },
		"truncated frame": func(c *rawConn) {
			c.write([]byte{0, 0, 0, 100, 0, 18, 0, 0})
			c.c.(*net.TCPConn).CloseWrite()
		},
		"oversized frame": func(c *rawConn) { c.write([]byte{0x10, 0, 0, 0, 0, 18, 0, 0}) },
		"negative size":   func(c *rawConn) { c.write([]byte{0xff, 0xff, 0xff, 0xf0}) },
		"acks=0 failure":  func(c *rawConn) { c.send(produceReq("no-such-topic", 0, batch(1, 0)), 9) },
	}
	for name, fn := range closes {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, b.Addr())
			fn(c)
			c.expectClosed()
			checkHealthy()
		})
	}

	t.Run("produce errors", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		code := func(req *kmsg.ProduceRequest, version int16) int16 {
			t.Helper()
			resp := c.roundTrip(req, version).(*kmsg.ProduceResponse)
			return resp.Topics[0].Partitions[0].ErrorCode
		}
		good := batch(3, 0)
		if got := code(produceReq("edge", 1, good), 9); got != 0 {
			t.Fatalf("good batch: %d", got)
		}
		zstd := batch(3, 4)
		if got := code(produceReq("edge", 1, zstd), 6); got != kerr.UnsupportedCompressionType.Code {
			t.Fatalf("zstd at v6: %d", got)
		}
		if got := code(produceReq("edge", 5, batch(1, 0)), 9); got != kerr.InvalidRequiredAcks.Code {
			t.Fatalf("acks=5: %d", got)
		}
		if got := code(produceReq("edge", 1, append(batch(1, 0), batch(1, 0)...)), 9); got != kerr.InvalidRecord.Code {
			t.Fatalf("two batches: %d", got)
		}
		bad := batch(2, 0)
		bad[len(bad)-1] ^= 0xff
		if got := code(produceReq("edge", 1, bad), 9); got != kerr.CorruptMessage.Code {
			t.Fatalf("bad CRC: %d", got)
		}
		if got := code(produceReq("edge", 1, bad[:30]), 9); got != kerr.CorruptMessage.Code {
			t.Fatalf("truncated batch: %d", got)
		}
		if got := code(produceReq("absent", -1, batch(1, 0)), 9); got != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("unknown topic: %d", got)
		}
		big := batch(1, 0)
		big = recordbatch.Reseal(append(big[:61], make([]byte, 200<<10)...)) // larger than max.message.bytes (garbage records)
		if got := code(produceReq("edge", -1, big), 9); got != kerr.MessageTooLarge.Code && got != kerr.CorruptMessage.Code {
			t.Fatalf("oversized batch: %d", got)
		}
		// Nothing but the good batch got in.
		lo := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "edge"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		if r := c.roundTrip(lo, 6).(*kmsg.ListOffsetsResponse); r.Topics[0].Partitions[0].Offset != 3 {
			t.Fatalf("end offset %+v, want 3", r.Topics[0].Partitions[0])
		}
	})

	t.Run("pipelined in order", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		// A long poll at the end of the log, then a quick request behind it: the
		// quick one is answered only after the fetch, which a produce on another
		// connection wakes up well before its 5 s wait.
		fetch := kmsg.NewPtrFetchRequest()
		fetch.MaxWaitMillis = 5000
		fetch.MinBytes = 1
		fetch.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "edge"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset = 3
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		fetch.Topics = append(fetch.Topics, ft)
		start := time.Now()
		fc := c.send(fetch, 12)
		ac := c.send(apiVersionsReq(), 3)
		time.AfterFunc(200*time.Millisecond, func() {
			other := dialRaw(t, b.Addr())
			other.roundTrip(produceReq("edge", 1, batch(2, 0)), 9)
		})
		body := c.read(fc, true)
		fr := kmsg.NewPtrFetchResponse()
		fr.Version = 12
		if err := fr.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		p := fr.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 5 || len(p.RecordBatches) == 0 || time.Since(start) > 4*time.Second {
			t.Fatalf("fetch: code %d hw %d %d bytes after %v", p.ErrorCode, p.HighWatermark, len(p.RecordBatches), time.Since(start))
		}
		c.read(ac, false)

		// Out of range.
		fetch.Topics[0].Partitions[0].FetchOffset = 99
		fr = c.roundTrip(fetch, 12).(*kmsg.FetchResponse)
		if fr.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("offset 99: %+v", fr.Topics[0].Partitions[0])
		}
		// A long poll that times out answers empty.
		fetch.MaxWaitMillis = 300
		fetch.Topics[0].Partitions[0].FetchOffset = 5
		start = time.Now()
		fr = c.roundTrip(fetch, 4).(*kmsg.FetchResponse)
		if p := fr.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || time.Since(start) < 250*time.Millisecond {
			t.Fatalf("timed-out poll: %+v after %v", p, time.Since(start))
		}
	})

	checkHealthy()
	if !bytes.Contains(batch(1, 0), []byte("hello")) {
		t.Fatal("batch builder broken")
	}
}
