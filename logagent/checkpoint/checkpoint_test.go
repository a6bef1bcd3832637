package checkpoint

import (
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/logpipe/logpipe/logagent/registry"
)

// newFile registers a file in a fresh registry and begins its checkpoint at offset 0.
func newFile(t *testing.T, acked func(string, int, int64)) (*registry.Registry, *File, string) {
	t.Helper()
	dir := t.TempDir()
	reg, err := registry.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "app.log")
	reg.Put(registry.Entry{Path: path, FileID: "1-2-0", Dev: 1, Inode: 2})
	key := registry.Key(1, 2)
	return reg, New(reg, acked).Begin(path, key, 0, 0), key
}

func offsetOf(t *testing.T, reg *registry.Registry, key string) int64 {
	t.Helper()
	e, ok := reg.Get(key)
	if !ok {
		t.Fatalf("registry forgot %s", key)
	}
	return e.Offset
}

func TestOffsetMovesOverAcknowledgedLinesOnly(t *testing.T) {
	type ack struct {
		lines int
		bytes int64
	}
	var acks []ack
	reg, f, key := newFile(t, func(_ string, lines int, bytes int64) { acks = append(acks, ack{lines, bytes}) })
	a, b, c := f.Track(10), f.Track(25), f.Track(40)
	f.Ack(b) // out of order: line a is not acknowledged yet
	if got := offsetOf(t, reg, key); got != 0 {
		t.Fatalf("offset %d after acknowledging only the second line, want 0", got)
	}
	if f.Outstanding() != 3 {
		t.Fatalf("outstanding %d, want 3", f.Outstanding())
	}
	f.AckRun([]uint64{a, 99}) // 99 was never tracked: ignored
	if got := offsetOf(t, reg, key); got != 25 {
		t.Fatalf("offset %d, want 25", got)
	}
	f.Ack(c)
	f.Ack(c) // again: nothing moves
	if got, off := offsetOf(t, reg, key), f.Offset(); got != 40 || off != 40 || f.Outstanding() != 0 {
		t.Fatalf("offset %d (file %d), outstanding %d; want 40, 40, 0", got, off, f.Outstanding())
	}
	want := []ack{{1, 0}, {2, 25}, {1, 15}, {1, 0}}
	if len(acks) != len(want) {
		t.Fatalf("observed %v, want %v", acks, want)
	}
	for i := range want {
		if acks[i] != want[i] {
			t.Fatalf("observed %v, want %v", acks, want)
		}
	}
}

// A truncated file gets a new incarnation; acknowledgements of the old one must not
// move the new one's offset.
func TestOldIncarnationIgnored(t *testing.T) {
	reg, f, key := newFile(t, nil)
	seq := f.Track(100)
	e, _ := reg.Get(key)
	e.Gen, e.Offset = 1, 0
	reg.Put(e)
	f.Ack(seq)
	if got := offsetOf(t, reg, key); got != 0 {
		t.Fatalf("offset %d after an old incarnation's ack, want 0", got)
	}
}

// The registry may forget a file that is gone only once its harvester let it go and
// every line sent is acknowledged.
func TestReleasedOnceClosedAndAcknowledged(t *testing.T) {
	reg, f, key := newFile(t, nil)
	seq := f.Track(10)
	// The file is gone (it never existed on disk here).
	if n := reg.Clean(true, 0, true); n != 0 {
		t.Fatalf("forgot %d entries of a file being read", n)
	}
	f.Close()
	if n := reg.Clean(true, 0, true); n != 0 {
		t.Fatalf("forgot %d entries with a line not acknowledged", n)
	}
	f.Ack(seq)
	if n := reg.Clean(true, 0, false); n != 1 {
		t.Fatalf("forgot %d entries once closed and acknowledged, want 1", n)
	}
	if _, ok := reg.Get(key); ok {
		t.Fatal("entry still there")
	}
	f.Close() // twice: the registry is not released twice
}

// Concurrent acknowledgements in random order, as partition senders deliver them,
// end at the last line's offset with nothing outstanding.
func TestConcurrentAcks(t *testing.T) {
	reg, f, key := newFile(t, nil)
	const lines = 10000
	seqs := make([]uint64, lines)
	for i := range seqs {
		seqs[i] = f.Track(int64(i+1) * 10)
	}
	rand.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 8; i < lines; i += 4 * 8 { // every fourth run of 8
				f.AckRun(seqs[i:min(i+8, lines)])
			}
		}()
	}
	wg.Wait()
	if got := offsetOf(t, reg, key); got != lines*10 || f.Outstanding() != 0 {
		t.Fatalf("offset %d, outstanding %d; want %d, 0", got, f.Outstanding(), lines*10)
	}
	// Saved, the offset survives a restart.
	if err := reg.Save(); err != nil {
		t.Fatal(err)
	}
	reg2, err := registry.Open(filepath.Dir(f.path))
	if err != nil {
		t.Fatal(err)
	}
	if got := offsetOf(t, reg2, key); got != lines*10 {
		t.Fatalf("saved offset %d, want %d", got, lines*10)
	}
}

// A window sliding over many lines, as a busy file's: sequence numbers stay right as
// the slice of pending lines is reused, and it does not grow with the lines sent.
func TestSlidingWindow(t *testing.T) {
	reg, f, key := newFile(t, nil)
	const lines, lag = 200000, 3000
	seqs := make([]uint64, 0, lines)
	for i := 0; i < lines; i++ {
		seq := f.Track(int64(i+1) * 7)
		if seq != uint64(i) {
			t.Fatalf("line %d got sequence %d", i, seq)
		}
		seqs = append(seqs, seq)
		if i >= lag && i%2 == 0 {
			// Acknowledge the lines lag behind in pairs, each pair out of order.
			f.AckRun([]uint64{seqs[i-lag+1]})
			f.AckRun([]uint64{seqs[i-lag]})
			if got := f.Offset(); got != int64(i-lag+2)*7 {
				t.Fatalf("line %d: offset %d, want %d", i, got, (i-lag+2)*7)
			}
		}
	}
	if c := cap(f.pending); c > 4*lag {
		t.Fatalf("pending lines' slice grew to %d for a window of %d", c, lag)
	}
	var rest []uint64
	for i := lines - lag; i < lines; i++ {
		rest = append(rest, uint64(i))
	}
	f.AckRun(rest)
	if got := offsetOf(t, reg, key); got != lines*7 || f.Outstanding() != 0 {
		t.Fatalf("offset %d, outstanding %d; want %d, 0", got, f.Outstanding(), lines*7)
	}
}
