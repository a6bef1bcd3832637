package recordbatch

import (
	"encoding/binary"
	"errors"
	"testing"
)

// compacted builds the batch compaction leaves of offsets 0..last: the records of
// deltas, kept with their offset range.
func compacted(last int32, deltas ...int32) []byte {
	b := Build(New(1_800_000_000_000))
	b = b[:HeaderSize]
	for _, d := range deltas {
		b = AppendRecord(b, d, Record{Value: []byte("v")})
	}
	binary.BigEndian.PutUint32(b[OffLastOffsetDelta:], uint32(last))
	binary.BigEndian.PutUint32(b[OffRecordCount:], uint32(len(deltas)))
	return Reseal(b)
}

// TestFetchedRecordsOfCompactedBatch: a fetched batch of a compacted topic may skip
// offset deltas and hold fewer records than its range, or none; a producer's batch
// may not (Validate, Records), and deltas must still grow within the range.
func TestFetchedRecordsOfCompactedBatch(t *testing.T) {
	gaps := compacted(5, 0, 2, 5)
	var got []int32
	if _, err := FetchedRecords(gaps, 1<<20, func(r Record) error { got = append(got, r.OffsetDelta); return nil }); err != nil ||
		len(got) != 3 || got[1] != 2 || got[2] != 5 {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := FetchedRecords(compacted(3), 1<<20, nil); err != nil {
		t.Fatalf("empty compacted batch: %v", err)
	}
	for name, b := range map[string][]byte{"gaps": gaps, "empty": compacted(3)} {
		if _, err := Validate(b, 1<<20); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Validate took a %s batch: %v", name, err)
		}
		if _, err := Records(b, 1<<20, func(Record) error { return nil }); err == nil {
			t.Errorf("Records took a %s batch", name)
		}
	}
	for name, b := range map[string][]byte{
		"delta past the range":    compacted(3, 0, 4),
		"deltas not growing":      compacted(5, 2, 2),
		"more records than range": compacted(1, 0, 1, 2),
	} {
		if _, err := FetchedRecords(b, 1<<20, nil); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
