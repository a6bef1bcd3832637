package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func sample(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			TimestampDelta: int64(i * 7),
			Key:            []byte(fmt.Sprintf("key-%d", i)),
			Value:          []byte(strings.Repeat("v", i*13)),
			Headers:        []RecordHeader{{Key: []byte("host"), Value: []byte("web-1")}, {Key: []byte("null"), Value: nil}},
		}
	}
	recs[0].Key = nil // a null key
	return recs
}

// TestBuildMatchesKmsg checks the builder against kmsg's independent decoder, for
// every codec, and that Records reads back what was built.
func TestBuildMatchesKmsg(t *testing.T) {
	for _, codec := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			want := sample(50)
			b := New(1_700_000_000_000, want...)
			b.Attributes = int16(codec)
			raw := Build(b)

			h, err := Validate(raw, 1<<20)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if h.NumRecords != 50 || h.LastOffsetDelta != 49 || h.MaxTimestamp != 1_700_000_000_000+49*7 {
				t.Fatalf("header %+v", h)
			}

			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(raw); err != nil {
				t.Fatalf("kmsg: %v", err)
			}
			if uint32(kb.CRC) != CRC(raw) || kb.NumRecords != 50 {
				t.Fatalf("kmsg batch %+v", kb)
			}

			var got []Record
			if _, err := Records(raw, 1<<20, func(r Record) error {
				r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
				got = append(got, r)
				return nil
			}); err != nil {
				t.Fatalf("Records: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range got {
				w := want[i]
				g := got[i]
				if g.OffsetDelta != int32(i) || g.TimestampDelta != w.TimestampDelta ||
					!bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) ||
					!bytes.Equal(g.Value, w.Value) || len(g.Headers) != 2 ||
					string(g.Headers[0].Key) != "host" || string(g.Headers[0].Value) != "web-1" || g.Headers[1].Value != nil {
					t.Fatalf("record %d: got %+v want %+v", i, g, w)
				}
			}
			if codec == None {
				// kmsg reads uncompressed records itself: compare once more.
				recs := kb.Records
				for i := range want {
					l, n := binary.Varint(recs)
					var r kmsg.Record
					if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
						t.Fatalf("kmsg record %d: %v", i, err)
					}
					recs = recs[n+int(l):]
					if !bytes.Equal(r.Value, want[i].Value) || r.OffsetDelta != int32(i) || len(r.Headers) != 2 {
						t.Fatalf("kmsg record %d: %+v", i, r)
					}
				}
			}
		})
	}
}

// mutate builds a one-record batch, changes its record bytes with f and reseals it
// (length and CRC right), so that only the record is wrong.
func mutate(f func(rec []byte) []byte) []byte {
	raw := Build(New(1, Record{Key: []byte("k"), Value: []byte("value")}))
	rec := f(bytes.Clone(raw[HeaderSize:]))
	return Reseal(append(raw[:HeaderSize:HeaderSize], rec...))
}

func TestValidateRejects(t *testing.T) {
	good := Build(New(1, Record{Key: []byte("k"), Value: []byte("value")}))
	// The record, uncompressed: len, attr, tsDelta, offDelta, keyLen, "k", valLen, "value", headers.
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"short":          {good[:40], ErrCorrupt},
		"bad crc":        {func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), ErrCorrupt},
		"magic 1":        {func() []byte { b := bytes.Clone(good); b[OffMagic] = 1; return Reseal(b) }(), ErrCorrupt},
		"codec 7":        {func() []byte { b := bytes.Clone(good); b[OffAttributes+1] |= 7; return Reseal(b) }(), ErrCorrupt},
		"count 2":        {func() []byte { b := bytes.Clone(good); b[OffRecordCount+3] = 2; return Reseal(b) }(), ErrCorrupt},
		"trailing byte":  {mutate(func(r []byte) []byte { return append(r, 0) }), ErrInvalidRecord},
		"offset delta 5": {mutate(func(r []byte) []byte { r[3] = 10; return r }), ErrInvalidRecord},
		"key too long":   {mutate(func(r []byte) []byte { r[4] = 100; return r }), ErrInvalidRecord},
		"key -2":         {mutate(func(r []byte) []byte { r[4] = 3; return r }), ErrInvalidRecord},
		"length too big": {mutate(func(r []byte) []byte { r[0] += 2; return r }), ErrInvalidRecord},
		"length small":   {mutate(func(r []byte) []byte { r[0] -= 2; return r }), ErrInvalidRecord},
		"header count huge": {mutate(func(r []byte) []byte {
			r = r[:len(r)-1]
			r = binary.AppendVarint(r, 1<<30)
			r[0] = byte(2 * (len(r) - 1))
			return r
		}), ErrInvalidRecord},
	}
	if _, err := Validate(good, 1<<20); err != nil {
		t.Fatalf("good batch: %v", err)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Validate(c.b, 1<<20)
			if !errors.Is(err, c.want) {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
			if _, err := Records(c.b, 1<<20, func(Record) error { return nil }); !errors.Is(err, c.want) {
				t.Fatalf("Records = %v, want %v", err, c.want)
			}
		})
	}
}
