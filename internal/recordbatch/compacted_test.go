package recordbatch

import (
	"encoding/binary"
	"testing"
)

// compacted builds the batch compaction leaves of offsets 0..last: the records of
// deltas, kept with their offset range.
func compacted(last int32, deltas ...int32) []byte {
	b := Build(New(1_800_000_000_000))[:HeaderSize]
	for _, d := range deltas {
		b = AppendRecord(b, d, Record{Value: []byte("v")})
	}
	binary.BigEndian.PutUint32(b[OffLastOffsetDelta:], uint32(last))
	binary.BigEndian.PutUint32(b[OffRecordCount:], uint32(len(deltas)))
	return Reseal(b)
}

// TestLenientWalkOfCompactedBatch: a batch a compacted topic serves may skip offset
// deltas; Lenient takes it, Strict (a producer's batch) does not, and Lenient still
// wants the deltas to grow within lastOffsetDelta.
func TestLenientWalkOfCompactedBatch(t *testing.T) {
	walk := func(b []byte, s Strictness) ([]int32, error) {
		var got []int32
		err := Walk(b[HeaderSize:], ParseHeader(b), s, func(r Record) error { got = append(got, r.OffsetDelta); return nil })
		return got, err
	}
	gaps := compacted(5, 0, 2, 5)
	if got, err := walk(gaps, Lenient); err != nil || len(got) != 3 || got[1] != 2 || got[2] != 5 {
		t.Fatalf("lenient: %v %v", got, err)
	}
	if _, err := walk(gaps, Strict); err == nil {
		t.Fatal("strict took offset-delta gaps")
	}
	if _, err := Validate(gaps, 1<<20); err == nil {
		t.Fatal("Validate took offset-delta gaps")
	}
	for name, b := range map[string][]byte{
		"delta past the range": compacted(3, 0, 4),
		"deltas not growing":   compacted(5, 2, 2),
	} {
		if _, err := walk(b, Lenient); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
