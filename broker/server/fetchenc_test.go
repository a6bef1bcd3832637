package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fileSlice is a recordSlice over a plain file, like storage.Slice.
type fileSlice struct {
	f        *os.File
	pos, n   int64
	released *int
}

func (s fileSlice) Len() int64     { return s.n }
func (s fileSlice) File() *os.File { return s.f }
func (s fileSlice) Pos() int64     { return s.pos }
func (s fileSlice) ReadAt(dst []byte) error {
	_, err := s.f.ReadAt(dst[:s.n], s.pos)
	return err
}
func (s fileSlice) Release() { *s.released++ }

// fetchFixture writes data to a file and returns topics that reference parts of it.
func fetchFixture(t *testing.T) ([]fetchTopic, []byte, *int) {
	t.Helper()
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "seg.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	released := new(int)
	sl := func(pos, n int64) recordSlice { return fileSlice{f: f, pos: pos, n: n, released: released} }
	topics := []fetchTopic{
		{name: "web_log", partitions: []fetchPartition{
			{partition: 0, hw: 100, lso: 100, logStart: 3, records: sl(10, 1000)},
			{partition: 1, hw: 0, lso: 0, logStart: 0},
			{partition: 2, errorCode: 1, hw: 5, lso: 5, logStart: 5},
		}},
		{name: "app", partitions: []fetchPartition{
			{partition: 7, hw: 1 << 40, lso: 1 << 40, logStart: 1 << 39, records: sl(5000, 200<<10)},
		}},
		{name: "empty"},
	}
	return topics, data, released
}

// kmsgFetch builds the same response with kmsg.
func kmsgFetch(version int16, corr int32, topics []fetchTopic, data []byte) []byte {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	for _, ft := range topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = ft.name
		for _, fp := range ft.partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = fp.partition, fp.errorCode
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = fp.hw, fp.lso, fp.logStart
			rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			rp.PreferredReadReplica = -1
			rp.RecordBatches = []byte{}
			if fp.records != nil {
				s := fp.records.(fileSlice)
				rp.RecordBatches = data[s.pos : s.pos+s.n]
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return responseFrame(corr, resp)
}

func TestEncodeFetchMatchesKmsg(t *testing.T) {
	topics, data, released := fetchFixture(t)
	for v := int16(4); v <= 12; v++ {
		f := encodeFetch(v, 42, 0, 0, 0, topics)
		got, err := f.bytes()
		if err != nil {
			t.Fatal(err)
		}
		want := kmsgFetch(v, 42, topics, data)
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: encoding differs from kmsg (got %d bytes, want %d)", v, len(got), len(want))
		}
		// And kmsg decodes it back.
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		body := got[8:]
		if v >= 12 {
			body = body[1:]
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: kmsg cannot decode: %v", v, err)
		}
		if len(resp.Topics) != 3 || !bytes.Equal(resp.Topics[1].Partitions[0].RecordBatches, data[5000:5000+200<<10]) {
			t.Fatalf("v%d: decoded response differs", v)
		}
	}
	// Top-level error and session id at v7+.
	for v := int16(7); v <= 12; v++ {
		got, _ := encodeFetch(v, 1, 5, 70, 0, nil).bytes()
		resp := kmsg.NewPtrFetchResponse()
		resp.Version, resp.ThrottleMillis, resp.ErrorCode = v, 5, 70
		if want := responseFrame(1, resp); !bytes.Equal(got, want) {
			t.Fatalf("v%d error response differs:\n got %x\nwant %x", v, got, want)
		}
	}
	f := encodeFetch(12, 1, 0, 0, 0, topics)
	f.release()
	if *released != 2 {
		t.Fatalf("released %d slices, want 2", *released)
	}
}

// TestFetchFrameWriteTo writes a frame over TCP (sendfile) and over a pipe
// (pread fallback) and checks the bytes received.
func TestFetchFrameWriteTo(t *testing.T) {
	topics, data, _ := fetchFixture(t)
	want := kmsgFetch(12, 9, topics, data)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(c)
	for range 3 {
		if err := encodeFetch(12, 9, 0, 0, 0, topics).writeTo(bw, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if b := <-got; !bytes.Equal(b, bytes.Repeat(want, 3)) {
		t.Fatalf("tcp: received %d bytes, want %d identical", len(b), 3*len(want))
	}

	a, b := net.Pipe()
	go func() {
		bw := bufio.NewWriter(a)
		encodeFetch(12, 9, 0, 0, 0, topics).writeTo(bw, a)
		bw.Flush()
		a.Close()
	}()
	rb, _ := io.ReadAll(b)
	if !bytes.Equal(rb, want) {
		t.Fatalf("pipe: received %d bytes, want %d identical", len(rb), len(want))
	}
}

func TestResponseFrameHeader(t *testing.T) {
	// ApiVersions v3 is flexible but its response header has no tag byte.
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = 3
	f := responseFrame(7, av)
	if size := (&kbin.Reader{Src: f}).Int32(); int(size) != len(f)-4 {
		t.Fatalf("size prefix %d, frame %d bytes", size, len(f))
	}
	body := av.AppendTo(nil)
	if !bytes.Equal(f[8:], body) {
		t.Fatalf("ApiVersions v3 frame has a header tag byte")
	}
	md := kmsg.NewPtrMetadataResponse()
	md.Version = 9
	f = responseFrame(7, md)
	if f[8] != 0 || !bytes.Equal(f[9:], md.AppendTo(nil)) {
		t.Fatalf("Metadata v9 frame lacks its header tag byte")
	}
}
