package server

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Groups answers the consumer-group APIs. The server routes these keys to it:
// OffsetCommit (8), OffsetFetch (9), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
// SyncGroup (14), DescribeGroups (15), ListGroups (16), DeleteGroups (42),
// OffsetDelete (47). FindCoordinator (10) is answered by the server itself (this
// node is every coordinator).
//
// Handle may block (JoinGroup waits for the rebalance); ctx is cancelled when the
// client's connection closes or the broker stops. The request is already
// version-checked; the response must be req.ResponseKind() filled in, at the same
// version. An error closes the connection (use it only for requests that are
// malformed beyond an error code). Requests of one connection reach Handle one at
// a time, in order.
type Groups interface {
	Handle(ctx context.Context, client Client, req kmsg.Request) (kmsg.Response, error)
	// Versions reports the [min,max] version the coordinator implements for each
	// key above; the server advertises these in ApiVersions.
	Versions() map[int16][2]int16
}

// groupKeys are the API keys routed to Groups.
var groupKeys = []int16{8, 9, 11, 12, 13, 14, 15, 16, 42, 47}

// versionRange is the [min, max] version advertised for an API key.
type versionRange struct{ min, max int16 }

type apiKeyEntry struct{ key, min, max int16 }

// minProduceVersion is the lowest Produce version actually accepted: v3 is the first
// with record batch v2. Versions 0-2 are advertised only because librdkafka before
// 2.11.1 enables gzip/snappy compression only when Produce v0 is in the range.
const minProduceVersion = 3

// baseVersions are the APIs the server itself implements, with the range it
// advertises. Every advertised version is decoded and encoded by kmsg.
var baseVersions = map[int16]versionRange{
	0:  {0, 9},  // Produce (v3+ accepted, see minProduceVersion)
	1:  {4, 12}, // Fetch
	2:  {1, 6},  // ListOffsets
	3:  {0, 12}, // Metadata
	10: {0, 4},  // FindCoordinator
	18: {0, 4},  // ApiVersions
	19: {0, 7},  // CreateTopics
	20: {0, 6},  // DeleteTopics
	22: {0, 4},  // InitProducerId
	32: {0, 4},  // DescribeConfigs
	35: {0, 4},  // DescribeLogDirs
	37: {0, 3},  // CreatePartitions
	17: {0, 1},  // SaslHandshake (only v1 is served: tokens travel in SaslAuthenticate; librdkafka wants v0 in the range)
	36: {0, 2},  // SaslAuthenticate
	50: {0, 0},  // DescribeUserScramCredentials
	51: {0, 0},  // AlterUserScramCredentials
	29: {0, 3},  // DescribeAcls
	30: {0, 3},  // CreateAcls
	31: {0, 3},  // DeleteAcls
}

// buildVersions merges the server's table with the group coordinator's.
func buildVersions(g Groups) (map[int16]versionRange, []apiKeyEntry) {
	v := make(map[int16]versionRange, len(baseVersions)+len(groupKeys))
	for k, r := range baseVersions {
		v[k] = r
	}
	if g != nil {
		gv := g.Versions()
		for _, k := range groupKeys {
			r, ok := gv[k]
			if !ok {
				continue
			}
			req := kmsg.RequestForKey(k)
			if req == nil || r[0] < 0 || r[0] > r[1] || r[1] > req.MaxVersion() {
				continue
			}
			v[k] = versionRange{r[0], r[1]}
		}
	}
	keys := make([]apiKeyEntry, 0, len(v))
	for k, r := range v {
		keys = append(keys, apiKeyEntry{k, r.min, r.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].key < keys[j].key })
	return v, keys
}

func isGroupKey(k int16) bool {
	for _, g := range groupKeys {
		if g == k {
			return true
		}
	}
	return false
}

// header is a decoded request header (v1 or v2).
type header struct {
	key      int16
	version  int16
	corr     int32
	clientID string
}

// errApiVersionsTooNew marks an ApiVersions request of a version above the
// advertised maximum: it is answered with a v0 UNSUPPORTED_VERSION body (KIP-511).
var errApiVersionsTooNew = errors.New("ApiVersions version too new")

// parseRequest decodes one request frame (without its size prefix): the header,
// then the body with kmsg after checking that the key is known and the version is
// in the advertised range. Any error means the connection must be closed, except
// errApiVersionsTooNew.
func (s *Server) parseRequest(frame []byte) (header, kmsg.Request, error) {
	var h header
	r := kbin.Reader{Src: frame}
	h.key = r.Int16()
	h.version = r.Int16()
	h.corr = r.Int32()
	if id := r.NullableString(); id != nil {
		h.clientID = *id
	}
	if !r.Ok() {
		return h, nil, errors.New("truncated request header")
	}
	vr, ok := s.versions[h.key]
	if !ok {
		return h, nil, fmt.Errorf("unsupported API key %d (%s)", h.key, kmsg.NameForKey(h.key))
	}
	if h.key == 18 && h.version > vr.max {
		return h, nil, errApiVersionsTooNew
	}
	if h.version < vr.min || h.version > vr.max || (h.key == 0 && h.version < minProduceVersion) {
		min := vr.min
		if h.key == 0 {
			min = minProduceVersion
		}
		return h, nil, fmt.Errorf("unsupported version %d of %s (supported %d..%d)", h.version, kmsg.NameForKey(h.key), min, vr.max)
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return h, nil, fmt.Errorf("unknown API key %d", h.key)
	}
	req.SetVersion(h.version)
	if req.IsFlexible() {
		skipTags(&r)
		if !r.Ok() {
			return h, nil, errors.New("truncated request header tags")
		}
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return h, nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// skipTags skips a tagged-field section, stopping at the first decode error
// (kmsg.SkipTags would spin through a huge bogus tag count).
func skipTags(r *kbin.Reader) {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
}

// responseFrame encodes a response into a complete frame: size, correlation id,
// the empty header tag section for flexible responses (never for ApiVersions,
// whose response header is always v0), and the body.
func responseFrame(corr int32, resp kmsg.Response) []byte {
	buf := make([]byte, 8, 128)
	kbin.AppendInt32(buf[:4], corr)
	if resp.IsFlexible() && resp.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	kbin.AppendInt32(buf[:0], int32(len(buf)-4))
	return buf
}
