package storage

import (
	"github.com/logpipe/logpipe/internal/recordbatch"

	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// openFDs counts the process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// lowerNofile sets the soft RLIMIT_NOFILE to n for the rest of the test.
func lowerNofile(t *testing.T, n uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	lim := old
	lim.Cur = min(n, old.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// layoutSegments replaces the data of partition dir with n segments of one batch
// each (offset i holds value "v<i>-0"), as a topic rolled at every batch leaves them,
// written directly: rolling through the store fsyncs several files per segment.
func layoutSegments(t testing.TB, dir string, n int) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range old {
		os.Remove(f)
	}
	ts := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		b := makeBatch(t, batchSpec{value: fmt.Sprintf("v%d", i), ts: ts})
		recordbatch.SetBaseOffset(b, int64(i))
		if err := os.WriteFile(segmentPath(dir, int64(i), ".log"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if i == n-1 {
			break // the active segment: its indexes are rebuilt at Open
		}
		var te [timeEntrySize]byte
		putTimeEntry(te[:], ts, 0)
		if err := os.WriteFile(segmentPath(dir, int64(i), ".index"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(segmentPath(dir, int64(i), ".timeindex"), te[:], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestManySegmentsBoundedFDs is the hostile input of issue 12: a topic rolled at
// every batch (segment.bytes=14 was accepted before) made one open file per segment,
// so a broker with 1,024 descriptors stopped accepting connections, and recovery
// opened them all again. With the descriptor limit at 256 the store recovers 3,000
// segments (with and without their index files), reads every one and keeps rolling,
// while the descriptors it holds stay within the cache's bound (256/4 = 64).
func TestManySegmentsBoundedFDs(t *testing.T) {
	const segments = 3000
	lowerNofile(t, 256)
	start := time.Now()
	dir := t.TempDir()
	base := openFDs(t)
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	limit := s.cache.max
	if limit != 64 {
		t.Fatalf("cache bound %d with 256 descriptors, want 64", limit)
	}
	const slack = 16 // lock file, active segments, transient index reads, the runtime's own
	peak := 0
	checkFDs := func(what string) {
		t.Helper()
		n := openFDs(t) - base
		peak = max(peak, n)
		if n > limit+slack {
			t.Fatalf("%s: %d descriptors open, bound %d", what, n, limit+slack)
		}
	}
	cfg := DefaultTopicConfig()
	cfg.SegmentBytes = 14 // what older versions accepted: one segment per batch
	if _, err := s.CreateTopic("hostile", 1, cfg); err != nil {
		t.Fatal(err)
	}
	// Rolling through the store: every batch a segment, the sealed ones evicted.
	rolling, err := s.CreateTopic("rolling", 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*limit; i++ {
		if _, err := rolling.Partition(0).Append(makeBatch(t, batchSpec{value: fmt.Sprintf("v%d", i)})); err != nil {
			t.Fatal(err)
		}
		checkFDs(fmt.Sprintf("after %d rolls", i+1))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t) - base; n > 2 {
		t.Fatalf("%d descriptors left open after Close", n)
	}
	layoutSegments(t, filepath.Join(dir, "hostile-0"), segments)

	readAll := func(s *Store) {
		t.Helper()
		p := s.Topic("hostile").Partition(0)
		// A slice of the first segment, held while every other segment is read (and the
		// first one is evicted): it must stay readable until released.
		held, err := p.Read(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < segments; off++ {
			sl, err := p.Read(off, 1<<20)
			if err != nil {
				t.Fatalf("read %d: %v", off, err)
			}
			checkSlice(t, sl, off, fmt.Sprintf("v%d-0", off))
			sl.Release()
			checkFDs(fmt.Sprintf("reading offset %d", off))
		}
		checkSlice(t, held, 0, "v0-0")
		held.Release()
		if st := s.Stats(); st.SegmentEvictions == 0 || st.OpenSegmentFiles > limit {
			t.Fatalf("stats %+v: want evictions and at most %d open", st, limit)
		}
	}

	// Recovery after a clean shutdown: the producer state is replayed from every
	// segment (there is no snapshot), through the cache.
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	checkFDs("recovered")
	if got := len(s.Topic("hostile").Partition(0).segs); got != segments {
		t.Fatalf("%d segments recovered, want %d", got, segments)
	}
	if cfg := s.Topic("hostile").Config(); cfg.SegmentBytes != MinSegmentBytes {
		t.Fatalf("stored segment.bytes=14 recovered as %d, want the minimum %d", cfg.SegmentBytes, MinSegmentBytes)
	}
	readAll(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Recovery after a crash that lost the index files of 500 segments: each is opened
	// to be rebuilt (and fsynced), and still at most the cache's bound stay open.
	os.Remove(filepath.Join(dir, cleanShutdownFile))
	idx, _ := filepath.Glob(filepath.Join(dir, "hostile-0", "*.index"))
	for _, f := range idx[:500] {
		os.Remove(f)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	checkFDs("rebuilt")
	readAll(s)
	// Honest traffic goes on: appends land in the active segment, now 1 MiB.
	res, err := s.Topic("hostile").Partition(0).Append(makeBatch(t, batchSpec{value: "after"}))
	if err != nil || res.BaseOffset != segments {
		t.Fatalf("append after recovery: %+v %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d segments: peak %d descriptors above the start (bound %d+%d); %v", segments, peak, limit, slack, time.Since(start))
}

// checkSlice checks that sl starts with the batch at offset off whose first value is want.
func checkSlice(t testing.TB, sl Slice, off int64, want string) {
	t.Helper()
	buf := make([]byte, sl.Len())
	if err := sl.ReadAt(buf); err != nil {
		t.Fatalf("offset %d: %v", off, err)
	}
	h, err := recordbatch.CheckFrame(buf[:recordbatch.ParseHeader(buf).Length])
	if err != nil || h.BaseOffset != off {
		t.Fatalf("offset %d: batch at %d, %v", off, h.BaseOffset, err)
	}
	if !containsString(buf, want) {
		t.Fatalf("offset %d: batch does not hold %q", off, want)
	}
}

func containsString(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}

// TestFileCacheEvictsInUse checks the reference counting directly: a file evicted
// while a reader holds it is closed only when that reader releases it.
func TestFileCacheEvictsInUse(t *testing.T) {
	dir := t.TempDir()
	c := newFileCache(minOpenSegments)
	var segs []*segment
	for i := 0; i < minOpenSegments+1; i++ {
		path := segmentPath(dir, int64(i), ".log")
		if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, &segment{base: int64(i), dir: dir, cache: c, sealed: true})
	}
	held, err := segs[0].acquire()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs[1:] {
		r, err := s.acquire()
		if err != nil {
			t.Fatal(err)
		}
		r.release()
	}
	if segs[0].cached != nil {
		t.Fatal("least recently used segment still cached")
	}
	var b [4]byte
	if _, err := held.f.ReadAt(b[:], 0); err != nil || string(b[:]) != "data" {
		t.Fatalf("evicted file in use: %q %v", b, err)
	}
	held.release()
	if _, err := held.f.ReadAt(b[:], 0); err == nil {
		t.Fatal("evicted file still open after its last release")
	}
	if c.cachedCount() != minOpenSegments {
		t.Fatalf("%d cached, want %d", c.cachedCount(), minOpenSegments)
	}
	for _, s := range segs {
		c.drop(s)
	}
	if c.cachedCount() != 0 {
		t.Fatalf("%d cached after dropping all", c.cachedCount())
	}
}

// FuzzTopicConfigSet feeds arbitrary names and values to the config parser (what
// CreateTopics and broker.ini give it): it never panics, never allocates more than a
// few times its input, and what it accepts respects the minimums.
func FuzzTopicConfigSet(f *testing.F) {
	for _, s := range [][2]string{
		{"segment.bytes", "14"}, {"segment.bytes", "1048576"}, {"segment.ms", "1"},
		{"segment.ms", "60000"}, {"retention.ms", "-1"}, {"cleanup.policy", "compact"},
		{"max.message.bytes", "99999999999999999999"}, {"x", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		c := DefaultTopicConfig()
		allocs := testing.AllocsPerRun(1, func() { c = DefaultTopicConfig(); _ = c.Set(name, value) })
		if allocs > 16 {
			t.Fatalf("Set(%q, %q) allocated %v times", name, value, allocs)
		}
		if c.SegmentBytes < MinSegmentBytes || c.SegmentMs < MinSegmentMs {
			t.Fatalf("Set(%q, %q) accepted %+v", name, value, c)
		}
		if err := c.Set(name, value); err == nil && c.Entries() == nil {
			t.Fatal("no entries")
		}
	})
}

// TestConcurrentReadsWithEviction: readers of many segments through a cache of 4,
// while retention deletes the oldest, always get whole batches or out of range, and
// every file is closed once all is released.
func TestConcurrentReadsWithEviction(t *testing.T) {
	dir := t.TempDir()
	base := openFDs(t)
	s, err := Open(Options{Dir: dir, MaxOpenSegments: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic("c", 1, DefaultTopicConfig()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	const segments = 200
	layoutSegments(t, filepath.Join(dir, "c-0"), segments)
	s, err = Open(Options{Dir: dir, MaxOpenSegments: 4})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Topic("c").Partition(0)
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 400; i++ {
				off := int64((i*37 + g*11) % segments)
				sl, err := p.Read(off, 1<<20)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue
				}
				if err != nil {
					done <- err
					return
				}
				buf := make([]byte, sl.Len())
				err = sl.ReadAt(buf)
				sl.Release()
				if err != nil {
					done <- err
					return
				}
				if _, err := recordbatch.CheckFrame(buf[:recordbatch.ParseHeader(buf).Length]); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	cfg := DefaultTopicConfig()
	cfg.RetentionBytes = int64(segments/2) * p.Size() / segments
	for i := 0; i < 8; i++ {
		p.applyRetention(cfg, time.Now())
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.cachedCount(); n > 4 {
		t.Fatalf("%d files cached, bound 4", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t) - base; n > 2 {
		t.Fatalf("%d descriptors left open", n)
	}
}
