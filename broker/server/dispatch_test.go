package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

func testServer() *Server {
	s := &Server{}
	s.versions, s.apiKeys = buildVersions(nil)
	return s
}

// encodeRequest returns a request frame without its size prefix.
func encodeRequest(req kmsg.Request, version int16, clientID string) []byte {
	req.SetVersion(version)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	return f.AppendRequest(nil, req, 77)[4:]
}

func TestParseRequest(t *testing.T) {
	s := testServer()
	meta := kmsg.NewPtrMetadataRequest()
	topic := "web_log"
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	meta.Topics = append(meta.Topics, mt)
	for v := int16(0); v <= 12; v++ {
		h, req, err := s.parseRequest(encodeRequest(meta, v, "cid"))
		if err != nil {
			t.Fatalf("metadata v%d: %v", v, err)
		}
		r := req.(*kmsg.MetadataRequest)
		if h.corr != 77 || h.clientID != "cid" || r.Version != v || len(r.Topics) != 1 || *r.Topics[0].Topic != topic {
			t.Fatalf("metadata v%d decoded wrong: %+v %+v", v, h, r)
		}
	}

	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"unknown key", []byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, "unsupported API key"},
		{"produce v2", encodeRequest(kmsg.NewPtrProduceRequest(), 2, ""), "unsupported version 2 of Produce"},
		{"produce too new", encodeRequest(kmsg.NewPtrProduceRequest(), 10, ""), "unsupported version 10 of Produce"},
		{"fetch v3", encodeRequest(kmsg.NewPtrFetchRequest(), 3, ""), "unsupported version 3 of Fetch"},
		{"not advertised", encodeRequest(kmsg.NewPtrDeleteRecordsRequest(), 1, ""), "unsupported API key 21"},
		{"group key without groups", encodeRequest(kmsg.NewPtrJoinGroupRequest(), 5, ""), "unsupported API key 11"},
		{"truncated header", []byte{0, 3, 0, 1, 0}, "truncated"},
		{"truncated body", encodeRequest(meta, 9, "x")[:16], "decode Metadata"},
	}
	for _, c := range cases {
		_, _, err := s.parseRequest(c.frame)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}

	// ApiVersions newer than advertised: answered (KIP-511), not refused.
	frame := []byte{0, 18, 0, 9, 0, 0, 0, 5, 0xff, 0xff, 0x00}
	h, _, err := s.parseRequest(frame)
	if !errors.Is(err, errApiVersionsTooNew) || h.corr != 5 {
		t.Fatalf("ApiVersions v9: h=%+v err=%v", h, err)
	}
	resp := s.apiVersionsTooNew().(*kmsg.ApiVersionsResponse)
	f := responseFrame(5, resp)
	body := f[8:]
	if body[0] != 0 || body[1] != 35 {
		t.Fatalf("error code bytes %x, want 0023", body[:2])
	}
	back := kmsg.NewPtrApiVersionsResponse()
	back.Version = 0
	if err := back.ReadFrom(body); err != nil || len(back.ApiKeys) != 1 || back.ApiKeys[0].ApiKey != 18 || back.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("v0 fallback body: %+v, %v", back, err)
	}
}

// TestAdvertisedVersionsDecodable makes sure kmsg can decode and encode every
// advertised version of every key (nothing advertised beyond kmsg's range), and
// that the librdkafka gates are inside the ranges.
func TestAdvertisedVersionsDecodable(t *testing.T) {
	s := testServer()
	for _, k := range s.apiKeys {
		req := kmsg.RequestForKey(k.key)
		if req == nil || k.max > req.MaxVersion() {
			t.Errorf("key %d: advertised max %d beyond kmsg", k.key, k.max)
		}
	}
	for key, v := range map[int16]int16{0: 0, 0 + 1: 4, 10: 0, 22: 0, 2: 1} {
		r := s.versions[key]
		if v < r.min || v > r.max {
			t.Errorf("key %d: version %d not advertised (%d..%d)", key, v, r.min, r.max)
		}
	}
}

// FuzzParseRequest feeds arbitrary frames to the request parser: it must never
// panic, only return errors.
func FuzzParseRequest(f *testing.F) {
	meta := kmsg.NewPtrMetadataRequest()
	f.Add(encodeRequest(meta, 12, "fuzz"))
	f.Add(encodeRequest(meta, 1, ""))
	prod := kmsg.NewPtrProduceRequest()
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 70)
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	f.Add(encodeRequest(prod, 9, "p"))
	f.Add(encodeRequest(prod, 3, "p"))
	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	f.Add(encodeRequest(fetch, 12, "c"))
	f.Add(encodeRequest(kmsg.NewPtrApiVersionsRequest(), 3, "c"))
	f.Add(encodeRequest(kmsg.NewPtrCreateTopicsRequest(), 7, "c"))
	f.Add([]byte{0, 18, 0, 9, 0, 0, 0, 5, 0xff, 0xff})
	// ApiVersions v3 claiming 2^32 tagged fields.
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 1, 'x', 0, 2, 'a', 2, '1', 0xff, 0xff, 0xff, 0xff, 0x0f})
	s := testServer()
	// Decoding may cost a few times the frame (arrays of structures), never a
	// count's claim: a generous 64 bytes per input byte, and no input may loop
	// (kmsg before v1.15.1 spun through 2^32 claimed tagged fields).
	bound := fuzzbound.Bound{Fixed: 64 << 10, PerByte: 64, Time: 2 * time.Second}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var (
			h   header
			req kmsg.Request
			err error
		)
		bound.Check(t, len(frame), func() { h, req, err = s.parseRequest(frame) })
		if err == nil {
			if req == nil || req.Key() != h.key || req.GetVersion() != h.version {
				t.Fatalf("parsed %+v into %T", h, req)
			}
			// Whatever decoded must encode again.
			req.AppendTo(nil)
		}
	})
}

func TestFramePool(t *testing.T) {
	for _, size := range []int{8, minPooledFrame - 1, minPooledFrame, minPooledFrame + 1, 1 << 20, maxPooledFrame, maxPooledFrame + 1} {
		b := getFrame(size)
		if len(b) != size {
			t.Fatalf("getFrame(%d) has length %d", size, len(b))
		}
		if size >= minPooledFrame && size <= maxPooledFrame && (cap(b) < size || cap(b) >= 2*size && size > minPooledFrame) {
			t.Fatalf("getFrame(%d) has capacity %d", size, cap(b))
		}
		putFrame(b)
		if b2 := getFrame(size); len(b2) != size {
			t.Fatalf("recycled getFrame(%d) has length %d", size, len(b2))
		}
	}
}
