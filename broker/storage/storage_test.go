package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendReadOffsets(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	top, err := s.CreateTopic("logs", 2, TopicConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := top.Partition(1)
	var want []string
	for i := 0; i < 50; i++ {
		b := makeBatch(t, batchSpec{n: 3, value: fmt.Sprint("b", i)})
		res, err := p.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(i*3) || res.LastOffset != int64(i*3+2) || res.Duplicate {
			t.Fatalf("batch %d: %+v", i, res)
		}
		for j := 0; j < 3; j++ {
			want = append(want, fmt.Sprintf("b%d-%d", i, j))
		}
	}
	if hw := p.HighWatermark(); hw != 150 {
		t.Fatalf("HW %d", hw)
	}
	offs, vals := readAll(t, p, 0)
	if !reflect.DeepEqual(vals, want) {
		t.Fatalf("values differ: %v", vals[:5])
	}
	for i, o := range offs {
		if o != int64(i) {
			t.Fatalf("offset %d at %d", o, i)
		}
	}
	// From the middle of a batch: the batch holding the offset comes first.
	sl, err := p.Read(31, 1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, sl.Len())
	sl.ReadAt(buf)
	sl.Release()
	o, _ := decodeValues(t, buf)
	if o[0] != 30 || len(o) != 3 {
		t.Fatalf("read(31, 1 byte): offsets %v, want the one batch 30..32", o)
	}
	// At the end: empty. Past it or before the start: out of range.
	if sl, err := p.Read(150, 1000); err != nil || sl.Len() != 0 {
		t.Fatalf("read at HW: %v %d", err, sl.Len())
	}
	for _, off := range []int64{151, -1} {
		if _, err := p.Read(off, 1000); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read %d: %v", off, err)
		}
	}
}

func TestValidateBatch(t *testing.T) {
	good := makeBatch(t, batchSpec{n: 2, value: "v"})
	if _, err := checkProducerBatch(good, 1<<20); err != nil {
		t.Fatalf("good batch: %v", err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"short":           {good[:40], ErrCorruptMessage},
		"length":          {mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 5); return b }), ErrCorruptMessage},
		"truncated":       {good[:len(good)-1], ErrCorruptMessage},
		"magic":           {mutate(func(b []byte) []byte { b[16] = 1; return b }), ErrCorruptMessage},
		"crc":             {mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorruptMessage},
		"lastOffsetDelta": {mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 5); fixCRC(b); return b }), ErrCorruptMessage},
		"control":         {mutate(func(b []byte) []byte { b[22] |= 0x20; fixCRC(b); return b }), ErrInvalidRecord},
		"transactional":   {mutate(func(b []byte) []byte { b[22] |= 0x10; fixCRC(b); return b }), ErrInvalidRecord},
		"codec":           {mutate(func(b []byte) []byte { b[22] |= 7; fixCRC(b); return b }), ErrCorruptMessage},
	}
	for name, c := range cases {
		if _, err := checkProducerBatch(c.b, 1<<20); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
	if _, err := checkProducerBatch(good, int32(len(good)-1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("too large: %v", err)
	}
}

func TestAppendRejectsInvalidAndKeepsServing(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	bad := makeBatch(t, batchSpec{value: "x"})
	bad[len(bad)-1] ^= 0xff
	if _, err := p.Append(bad); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("corrupt batch: %v", err)
	}
	if res, err := p.Append(makeBatch(t, batchSpec{value: "ok"})); err != nil || res.BaseOffset != 0 {
		t.Fatalf("after a bad batch: %+v %v", res, err)
	}
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], recordbatch.Checksum(b[21:]))
}

func TestRollIndexAndReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultTopicConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.IndexIntervalBytes = 512
	s := openStore(t, dir, func(o *Options) { o.Defaults = cfg })
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	for i := 0; i < 400; i++ {
		if _, err := p.Append(makeBatch(t, batchSpec{n: 2, value: fmt.Sprint("r", i), valueLen: 50, ts: 1_700_000_000_000 + int64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	bases, _ := segmentBases(filepath.Join(dir, "t-0"))
	if len(bases) < 5 {
		t.Fatalf("want several segments at 8 KiB, got %v", bases)
	}
	check := func(p *Partition) {
		t.Helper()
		for _, off := range []int64{0, 1, 77, 333, 500, 799} {
			sl, err := p.Read(off, 1)
			if err != nil {
				t.Fatalf("read %d: %v", off, err)
			}
			buf := make([]byte, sl.Len())
			sl.ReadAt(buf)
			sl.Release()
			o, v := decodeValues(t, buf)
			if o[0] != off&^1 {
				t.Fatalf("read %d: first offset %d", off, o[0])
			}
			if want := fmt.Sprintf("r%d-0x", off/2); !strings.HasPrefix(v[0], want) {
				t.Fatalf("read %d: value %q, want prefix %q", off, v[0], want)
			}
		}
		for _, c := range []struct{ ts, off int64 }{{1_700_000_000_000, 0}, {1_700_000_000_250, 500}, {1_700_000_000_399, 798}} {
			off, _, ok, err := p.OffsetForTimestamp(c.ts)
			if err != nil || !ok || off != c.off {
				t.Fatalf("offset for ts %d: %d %v %v, want %d", c.ts, off, ok, err, c.off)
			}
		}
		if _, _, ok, _ := p.OffsetForTimestamp(1_800_000_000_000); ok {
			t.Fatal("a timestamp after every record found an offset")
		}
	}
	check(p)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, func(o *Options) { o.Defaults = cfg })
	defer s.Close()
	p = s.Topic("t").Partition(0)
	if p.HighWatermark() != 800 {
		t.Fatalf("HW after reopen %d", p.HighWatermark())
	}
	check(p)
	// Delete one sealed index and damage another: rebuilt at open.
	s.Close()
	os.Remove(segmentPath(filepath.Join(dir, "t-0"), bases[1], ".index"))
	os.WriteFile(segmentPath(filepath.Join(dir, "t-0"), bases[2], ".index"), []byte{1, 2, 3}, 0o644)
	s = openStore(t, dir, func(o *Options) { o.Defaults = cfg })
	check(s.Topic("t").Partition(0))
	s.Close()
}

func TestRetention(t *testing.T) {
	c := newClock()
	cfg := DefaultTopicConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.RetentionMs = 3600_000
	s := openStore(t, t.TempDir(), func(o *Options) { o.Defaults = cfg; o.Now = c.now })
	defer s.Close()
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	for i := 0; i < 100; i++ {
		p.Append(makeBatch(t, batchSpec{value: "v", valueLen: 200, ts: c.now().UnixMilli()}))
		c.add(time.Minute)
	}
	// Now 100 minutes after the first batch: batches older than 60 minutes go, by segment.
	s.ApplyRetention()
	start := p.LogStartOffset()
	if start == 0 || start > 40 {
		t.Fatalf("log start %d after time retention", start)
	}
	if _, err := p.Read(start-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	// Size retention keeps at most retention.bytes, never the active segment.
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 1
	s.SetTopicConfig("t", cfg)
	s.ApplyRetention()
	p.mu.RLock()
	n := len(p.segs)
	p.mu.RUnlock()
	if n != 1 || p.LogStartOffset() == 0 || p.HighWatermark() != 100 {
		t.Fatalf("after size retention: %d segments, start %d, hw %d", n, p.LogStartOffset(), p.HighWatermark())
	}
	if _, err := p.Append(makeBatch(t, batchSpec{value: "after"})); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotentProducer(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	app := func(seq int32, n int, epoch int16) (AppendResult, error) {
		return p.Append(makeBatch(t, batchSpec{n: n, value: "v", pid: 7, epoch: epoch, seq: seq}))
	}
	if r, err := app(0, 2, 0); err != nil || r.BaseOffset != 0 {
		t.Fatal(r, err)
	}
	if r, err := app(2, 3, 0); err != nil || r.BaseOffset != 2 {
		t.Fatal(r, err)
	}
	// A retry of the first batch: its original offsets, nothing appended.
	if r, err := app(0, 2, 0); err != nil || !r.Duplicate || r.BaseOffset != 0 || r.LastOffset != 1 {
		t.Fatalf("duplicate: %+v %v", r, err)
	}
	if p.HighWatermark() != 5 {
		t.Fatalf("HW %d after duplicate", p.HighWatermark())
	}
	if _, err := app(9, 1, 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	check := func() {
		t.Helper()
		if r, err := app(2, 3, 0); err != nil || !r.Duplicate || r.BaseOffset != 2 {
			t.Fatalf("duplicate after reopen: %+v %v", r, err)
		}
		if _, err := app(6, 1, 0); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("gap after reopen: %v", err)
		}
	}
	check()
	s.Close()
	s = openStore(t, dir, nil) // clean reopen: from the snapshot
	p = s.Topic("t").Partition(0)
	check()
	// Unclean: no marker, no snapshot; the state comes from the log.
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	s.lock.Close()
	os.Remove(filepath.Join(dir, cleanShutdownFile))
	for _, off := range snapshotOffsets(filepath.Join(dir, "t-0")) {
		os.Remove(segmentPath(filepath.Join(dir, "t-0"), off, ".snapshot"))
	}
	s = openStore(t, dir, nil)
	defer s.Close()
	p = s.Topic("t").Partition(0)
	check()
	// Next in sequence is accepted; an older epoch is fenced; a new epoch must start at 0.
	if r, err := app(5, 1, 0); err != nil || r.BaseOffset != 5 {
		t.Fatal(r, err)
	}
	if _, err := app(3, 1, 1); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	if r, err := app(0, 1, 1); err != nil || r.BaseOffset != 6 {
		t.Fatal(r, err)
	}
	if _, err := app(6, 1, 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	// An unknown producer may start anywhere.
	if _, err := p.Append(makeBatch(t, batchSpec{value: "v", pid: 99, epoch: 0, seq: 42})); err != nil {
		t.Fatal(err)
	}
}

func TestNextProducerIDAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	seen := map[int64]bool{}
	for i := 0; i < 5; i++ {
		id, err := s.NextProducerID()
		if err != nil || seen[id] {
			t.Fatal(id, err)
		}
		seen[id] = true
	}
	s.Close()
	s = openStore(t, dir, nil)
	defer s.Close()
	for i := 0; i < 2000; i++ {
		id, err := s.NextProducerID()
		if err != nil || seen[id] {
			t.Fatalf("id %d repeated or failed: %v", id, err)
		}
		seen[id] = true
	}
}

func TestTopicsPersistAndDelete(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	cfg := DefaultTopicConfig()
	if err := cfg.Set("retention.ms", "60000"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("nope", "1"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal(err)
	}
	top, err := s.CreateTopic("a", 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := top.ID()
	if _, err := s.CreateTopic("a", 1, TopicConfig{}); !errors.Is(err, ErrTopicExists) {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "..", "a b", "ä", string(make([]byte, 250))} {
		if _, err := s.CreateTopic(bad, 1, TopicConfig{}); !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if _, err := s.CreateTopic("zero", 0, TopicConfig{}); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatal(err)
	}
	if err := s.CreatePartitions("a", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePartitions("a", 2); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatal(err)
	}
	s.CreateTopic("b", 1, TopicConfig{})
	top.Partition(2).Append(makeBatch(t, batchSpec{value: "x"}))
	s.Close()

	s = openStore(t, dir, nil)
	a := s.Topic("a")
	if a == nil || a.ID() != id || len(a.Partitions()) != 3 || a.Config().RetentionMs != 60000 || a.Partition(2).HighWatermark() != 1 {
		t.Fatalf("after reopen: %+v", a)
	}
	var retention ConfigEntry
	for _, e := range a.Config().Entries() {
		if e.Name == "retention.ms" {
			retention = e
		}
	}
	if retention.Value != "60000" || retention.Default {
		t.Fatalf("retention.ms entry %+v", retention)
	}
	if err := s.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("a"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a-0")); !os.IsNotExist(err) {
		t.Fatalf("partition directory left: %v", err)
	}
	s.Close()
	s = openStore(t, dir, nil)
	defer s.Close()
	if s.Topic("a") != nil || s.Topic("b") == nil || len(s.Topics()) != 1 {
		t.Fatalf("topics after delete and reopen: %d", len(s.Topics()))
	}
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("a second store opened the same directory")
	}
}

func TestWaitWokenByAppend(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	ch := p.Wait(0)
	select {
	case <-ch:
		t.Fatal("woken before any append")
	default:
	}
	p.Append(makeBatch(t, batchSpec{value: "x"}))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by append")
	}
	select {
	case <-p.Wait(0):
	default:
		t.Fatal("Wait below HW must be ready at once")
	}
}

func TestConcurrentAppendSync(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	top, _ := s.CreateTopic("t", 1, TopicConfig{})
	p := top.Partition(0)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				r, err := p.Append(makeBatch(t, batchSpec{value: fmt.Sprint(g, "-", i)}))
				if err == nil {
					err = p.Sync(r.LastOffset + 1)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p.HighWatermark() != 400 {
		t.Fatalf("HW %d", p.HighWatermark())
	}
	p.syncMu.Lock()
	synced := p.synced
	p.syncMu.Unlock()
	if synced != 400 {
		t.Fatalf("synced %d", synced)
	}
}
