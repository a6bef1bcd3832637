package recordbatch

import (
	"errors"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/fuzzbound"
)

// FuzzValidate feeds arbitrary bytes, as a producer could send them, to Validate
// and Records. Neither may panic or allocate far more than the input (the bound
// on decompression is 1 MiB here); a batch Validate accepts must be readable by
// Records, with the count its header states.
func FuzzValidate(f *testing.F) {
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		b := New(1, sample(3)...)
		b.Attributes = int16(c)
		f.Add(Build(b))
	}
	// Fixed covers one lz4 or zstd decoder's buffers (an lz4 frame of 4 MiB blocks
	// needs a 4 MiB buffer): the pools that keep decoders are per P, so the
	// measured run may make one anew.
	cost := fuzzbound.Bound{Fixed: 8 << 20, PerByte: 64, Time: 2 * time.Second}
	f.Fuzz(func(t *testing.T, b []byte) {
		const bound = 1 << 20
		// A first run fills the decoder pools (an lz4 or zstd decoder's buffers
		// are a fixed cost per decoder, not per input); the second is measured.
		Validate(b, bound)
		var h Header
		var verr error
		cost.Check(t, len(b), func() { h, verr = Validate(b, bound) })
		n := int32(0)
		_, rerr := Records(b, bound, func(Record) error { n++; return nil })
		if verr == nil {
			if rerr != nil {
				t.Fatalf("Validate accepted, Records: %v", rerr)
			}
			if !h.IsControl() && n != h.NumRecords {
				t.Fatalf("Records saw %d records, header says %d", n, h.NumRecords)
			}
		} else if !errors.Is(verr, ErrCorrupt) && !errors.Is(verr, ErrInvalidRecord) {
			t.Fatalf("Validate error %v wraps neither ErrCorrupt nor ErrInvalidRecord", verr)
		}
	})
}
