package recordbatch

import (
	"fmt"
	"strings"
	"testing"
)

// benchBatch is a batch like the agent's: lines of about 200 bytes with the host,
// path and offset headers.
func benchBatch(codec Codec, n int) []byte {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			TimestampDelta: int64(i),
			Key:            []byte("web-1/var/log/nginx/access.log"),
			Value:          []byte(fmt.Sprintf("%06d %s", i, strings.Repeat("GET /index.html 200 ", 10))),
			Headers: []RecordHeader{
				{Key: []byte("host"), Value: []byte("web-1")},
				{Key: []byte("path"), Value: []byte("/var/log/nginx/access.log")},
				{Key: []byte("offset"), Value: []byte(fmt.Sprint(i * 200))},
			},
		}
	}
	b := New(1_700_000_000_000, recs...)
	b.Attributes = int16(codec)
	return Build(b)
}

func BenchmarkValidate(b *testing.B) {
	for _, codec := range []Codec{None, Snappy, LZ4, Zstd, Gzip} {
		raw := benchBatch(codec, 500)
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Validate(raw, 32<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRecords(b *testing.B) {
	for _, codec := range []Codec{None, Snappy} {
		raw := benchBatch(codec, 500)
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				n := 0
				if _, err := Records(raw, 32<<20, func(Record) error { n++; return nil }); err != nil || n != 500 {
					b.Fatal(n, err)
				}
			}
		})
	}
}
