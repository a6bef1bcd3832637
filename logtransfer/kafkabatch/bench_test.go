package kafkabatch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/internal/recordbatch"
)

// BenchmarkDecode decodes a fetch response's worth of agent-like batches.
func BenchmarkDecode(b *testing.B) {
	var raw []byte
	for i := 0; i < 8; i++ {
		recs := make([]recordbatch.Record, 500)
		for j := range recs {
			recs[j] = recordbatch.Record{
				TimestampDelta: int64(j),
				Key:            []byte("web-1/var/log/nginx/access.log"),
				Value:          []byte(fmt.Sprintf("%06d %s", j, strings.Repeat("GET /index.html 200 ", 10))),
				Headers: []recordbatch.RecordHeader{
					{Key: []byte("host"), Value: []byte("web-1")},
					{Key: []byte("path"), Value: []byte("/var/log/nginx/access.log")},
					{Key: []byte("offset"), Value: []byte(fmt.Sprint(j * 200))},
				},
			}
		}
		bt := recordbatch.New(1_700_000_000_000, recs...)
		bt.BaseOffset = int64(i * 500)
		raw = append(raw, recordbatch.Build(bt)...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if got := Decode(raw, 64<<20); len(got) != 8 || got[7].Err != nil {
			b.Fatal(len(got))
		}
	}
}
